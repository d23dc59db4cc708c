-- The journal of dynamic updates (RFC 2136) per view and zone, so that IXFR (RFC 1995) sends the
-- differences between two served serials. `removed` and `added` hold one record per line in
-- zone-file syntax (`owner ttl type rdata`). Only the last entries per zone are kept.
CREATE TABLE dns_journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    view         TEXT NOT NULL,
    zone         TEXT NOT NULL,
    from_serial  INTEGER NOT NULL,
    to_serial    INTEGER NOT NULL,
    removed      TEXT NOT NULL,
    added        TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX dns_journal_view_zone ON dns_journal (view, zone, id);
