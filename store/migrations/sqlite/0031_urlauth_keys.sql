-- URLAUTH (RFC 4467 §3): one random access key per mailbox, made by the first GENURLAUTH for it
-- and deleted by RESETKEY, which invalidates every URL authorized with it. The key never leaves
-- the store: it signs and checks tokens (`urlauth.rs`).
CREATE TABLE urlauth_keys (
    mailbox_id  INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret      TEXT NOT NULL
);

CREATE INDEX urlauth_keys_user ON urlauth_keys(user_id);
