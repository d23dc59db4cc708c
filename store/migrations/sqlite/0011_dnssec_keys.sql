-- DNSSEC signing keys per zone name (RFC 4033-4035), shared by every view serving the zone and by
-- every node on the same database, so one DS at the parent validates all their answers.
-- `role` is 'csk', 'ksk' or 'zsk'; `state` is 'published' (in the DNSKEY RRset, not signing),
-- 'active' (published and signing) or 'retired' (published, not signing, before removal).
-- `private_key` is the PKCS#8 DER private key.
CREATE TABLE dnssec_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    zone         TEXT NOT NULL,
    key_tag      INTEGER NOT NULL,
    algorithm    INTEGER NOT NULL,
    role         TEXT NOT NULL,
    state        TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX dnssec_keys_zone ON dnssec_keys (zone, id);
