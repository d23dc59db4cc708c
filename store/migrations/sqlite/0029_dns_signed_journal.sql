-- The journal of a signed zone per view (RFC 1995 §4 with RFC 4035 §2): what changed between two
-- served serials, data, RRSIG and NSEC3 records together, so that IXFR sends a secondary the
-- difference after a restart and from every node. `removed` and `added` hold the records in DNS
-- wire format, one after the other. Pruned on write to the last entries and bytes per zone (the
-- `[dns]` settings journal_max_changes and journal_max_bytes).
CREATE TABLE dns_signed_journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    view         TEXT NOT NULL,
    zone         TEXT NOT NULL,
    from_serial  INTEGER NOT NULL,
    to_serial    INTEGER NOT NULL,
    removed      BLOB NOT NULL,
    added        BLOB NOT NULL,
    bytes        INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX dns_signed_journal_view_zone ON dns_signed_journal (view, zone, id);
-- One entry per step: of two nodes signing the same change, the first to store it wins.
CREATE UNIQUE INDEX dns_signed_journal_step ON dns_signed_journal (view, zone, from_serial, to_serial);

-- The signatures a view serves for a signed zone, per RRset (or NSEC3 record), with a digest of
-- the records they cover: a restart (or another node) reuses them while that RRset is unchanged and
-- they are fresh, so the signed zone it serves is the one secondaries hold and the journal applies.
-- `serial` is the served serial the signatures were made for: of two nodes signing the same
-- version, the first to store it wins.
CREATE TABLE dns_signatures (
    view    TEXT NOT NULL,
    zone    TEXT NOT NULL,
    owner   TEXT NOT NULL,
    rtype   INTEGER NOT NULL,
    digest  INTEGER NOT NULL,
    serial  INTEGER NOT NULL,
    rrsigs  BLOB NOT NULL,
    PRIMARY KEY (view, zone, owner, rtype)
);
