-- Stores the local copies of accepted messages in one statement (one round trip for a whole group
-- commit instead of one per copy). `copies` is a JSON array of objects (user_id, size, folder,
-- hash, internal_date, flags, keywords), taken in array order, as one by one: charge the user's
-- quota (0 = unlimited), pick the folder (INBOX if the user has none of that name), take the
-- mailbox's next UID and MODSEQ, insert the message. One row per copy, in order: charged 0 when
-- the quota is full; charged 1 and uid NULL when the user has no INBOX (the caller fails then).
-- The caller holds the users' row locks (Store::locked_tx) and stored the blobs.
CREATE FUNCTION postern_store_copies(copies JSONB)
RETURNS TABLE (copy_charged BIGINT, copy_mailbox BIGINT, copy_uid BIGINT, copy_modseq BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
    box BIGINT;
BEGIN
    FOR c IN SELECT (e->>'user_id')::BIGINT AS user_id, (e->>'size')::BIGINT AS size,
            e->>'folder' AS folder, e->>'hash' AS hash,
            (e->>'internal_date')::BIGINT AS internal_date, (e->>'flags')::BIGINT AS flags,
            e->>'keywords' AS keywords
            FROM jsonb_array_elements(copies) WITH ORDINALITY AS a(e, ord) ORDER BY a.ord LOOP
        copy_mailbox := NULL;
        copy_uid := NULL;
        copy_modseq := NULL;
        UPDATE users SET used_bytes = used_bytes + c.size WHERE id = c.user_id
            AND (quota_bytes = 0 OR used_bytes + c.size <= quota_bytes);
        IF NOT FOUND THEN
            copy_charged := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        copy_charged := 1;
        SELECT m.id INTO box FROM mailboxes m WHERE m.user_id = c.user_id
            AND m.name IN (c.folder, 'INBOX')
            ORDER BY CASE WHEN m.name = c.folder THEN 0 ELSE 1 END LIMIT 1;
        IF FOUND THEN
            UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                WHERE id = box
                RETURNING id, uidnext - 1, highestmodseq INTO copy_mailbox, copy_uid, copy_modseq;
            INSERT INTO messages (mailbox_id, uid, blob_hash, size, internal_date, flags,
                keywords, modseq)
                VALUES (copy_mailbox, copy_uid, c.hash, c.size, c.internal_date, c.flags,
                    c.keywords, copy_modseq);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
