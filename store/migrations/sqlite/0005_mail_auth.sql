-- DKIM keys per hosted domain (RFC 6376), RSA-2048 and Ed25519 (RFC 8463), and greylisting state.
-- A key is 'next' (published, not yet signing), 'active' (published and signing) or 'retired'
-- (still published for a while after rotation so mail in flight verifies).
CREATE TABLE dkim_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id    INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector     TEXT NOT NULL,
    algorithm    TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    public_key   TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER,
    UNIQUE (domain_id, selector)
);

-- One row per (client network, sender, recipient) triplet seen by the MX.
CREATE TABLE greylist (
    triplet     TEXT PRIMARY KEY,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    passed      INTEGER NOT NULL DEFAULT 0
);
