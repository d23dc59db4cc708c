-- SEARCH SUBJECT/FROM/TO/CC/BCC through trigrams, as BODY and TEXT use blob_text: the folded
-- header texts of blob_index (rowid = blob_index.id) in an FTS5 index with the trigram tokenizer,
-- so a string of three or more characters is a phrase of consecutive trigrams (exactly a
-- substring, RFC 3501 §6.4.4) read from the index instead of a scan of every message's texts.
-- The texts themselves stay in blob_index (external content): the table holds only the index,
-- kept in step by the triggers below, whatever inserts or deletes blob_index rows.
CREATE VIRTUAL TABLE blob_fields USING fts5(
    subject, from_text, to_text, cc_text, bcc_text,
    content = 'blob_index', content_rowid = 'id', columnsize = 0,
    tokenize = 'trigram case_sensitive 1'
);

CREATE TRIGGER blob_index_fields_inserted AFTER INSERT ON blob_index BEGIN
    INSERT INTO blob_fields (rowid, subject, from_text, to_text, cc_text, bcc_text)
    VALUES (new.id, new.subject, new.from_text, new.to_text, new.cc_text, new.bcc_text);
END;

-- An external-content FTS5 row is removed by giving the index the values it indexed.
CREATE TRIGGER blob_index_fields_deleted AFTER DELETE ON blob_index BEGIN
    INSERT INTO blob_fields (blob_fields, rowid, subject, from_text, to_text, cc_text, bcc_text)
    VALUES ('delete', old.id, old.subject, old.from_text, old.to_text, old.cc_text, old.bcc_text);
END;

-- The rows indexed before this migration.
INSERT INTO blob_fields (blob_fields) VALUES ('rebuild');
