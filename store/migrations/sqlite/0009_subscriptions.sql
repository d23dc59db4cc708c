-- IMAP subscriptions are a list of names, not a property of a mailbox (RFC 3501 §6.3.6: a
-- server "MUST NOT unilaterally remove an existing mailbox name from the subscription list even
-- if a mailbox by that name no longer exists"). mailboxes.subscribed stays as a mirror of
-- "this mailbox's name is subscribed", kept up to date by the store.
CREATE TABLE subscriptions (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

INSERT INTO subscriptions (user_id, name) SELECT user_id, name FROM mailboxes WHERE subscribed <> 0;
