-- The SOA serial each view last served for each zone, with a digest of the zone's content, so
-- that content changed while Postern was stopped (or a file rewritten without a new serial) is
-- served under a higher serial than any secondary holds.
CREATE TABLE dns_zone_serials (
    view    TEXT NOT NULL,
    zone    TEXT NOT NULL,
    serial  BIGINT NOT NULL,
    digest  BIGINT NOT NULL,
    PRIMARY KEY (view, zone)
);
