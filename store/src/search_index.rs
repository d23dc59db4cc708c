//! The per-blob index that FETCH of header sections and SEARCH read instead of message bytes
//! (`blob_index`, and on SQLite the FTS5 tables `blob_text` and `blob_fields`; migrations 0022
//! and 0032): the header block, the decoded and case-folded header fields, and the case-folded
//! decoded text of the message's text parts. A row is written in the transaction that stores the
//! blob and is deleted with it (`ON DELETE CASCADE`); blobs stored before the index existed are
//! indexed on first use and by [`Store::index_backlog`] (at start and after a restore). An SMTP
//! delivery writes the row without the body's full-text index, which [`crate::deferred_text`]
//! adds after the `250`.
//!
//! SEARCH keys are substring matches, case-insensitive (RFC 3501 §6.4.4): both the stored texts
//! and the searched string are folded with [`fold`], so a match is a plain substring test. On
//! SQLite a string of three or more characters is an FTS5 trigram phrase (consecutive trigrams:
//! exactly the substrings) in `blob_text` (BODY, TEXT) or `blob_fields` (the header keys,
//! migration 0032); on PostgreSQL every key is `LIKE` served by a pg_trgm GIN index (migrations
//! 0022 and 0026). See [`search_sql`].

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use mail_parser::decoders::html::html_to_text;
use mail_parser::{Message, MessageParser, PartType};
use sqlx::{Any, Transaction};

use crate::blobs::{read_blob, LOCK_KNOWN_BLOB};
use crate::db::{get, padded_rows, values_rows, Backend, Store, ROWS_PER_STATEMENT};
use crate::deferred_text::mark_pending;
use crate::error::{Result, StoreError};
use crate::mailboxes::Mailbox;
use crate::parsed::ParsedMessage;

/// Case folding for SEARCH: the stored texts and the searched strings go through this one function
/// (Unicode lower case; NUL, which PostgreSQL text cannot hold, becomes a space).
pub fn fold(text: &str) -> String {
    text.to_lowercase().replace('\0', " ")
}

/// Which text of a message a SEARCH key matches (RFC 3501 §6.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKey {
    /// `SUBJECT`: the decoded Subject.
    Subject,
    /// `FROM`: decoded From names and addresses.
    From,
    /// `TO`
    To,
    /// `CC`
    Cc,
    /// `BCC`
    Bcc,
    /// `BODY`: the decoded text parts.
    Body,
    /// `TEXT`: the header and the decoded text parts.
    Text,
}

/// A message's parse for storage: the metadata kept as JSON in `blobs.parsed` and its index row.
pub(crate) struct Analysed {
    /// [`ParsedMessage`] as JSON.
    pub json: String,
    /// What goes to `blob_index` (and `blob_text`).
    pub index: IndexEntry,
}

/// Whether [`analyse`] extracts the body text for the full-text index now or leaves it to
/// [`crate::deferred_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyText {
    /// Extracted now and written with the blob.
    Now,
    /// Left for later: the blob is marked pending.
    Deferred,
}

/// One `blob_index` row: see the module documentation.
pub(crate) struct IndexEntry {
    header: Vec<u8>,
    subject: String,
    from: String,
    to: String,
    cc: String,
    bcc: String,
    pub(crate) header_text: String,
    /// `None` when deferred ([`BodyText::Deferred`]).
    pub(crate) body_text: Option<String>,
}

impl IndexEntry {
    /// Binds the six header columns of a `blob_index` row (header, subject, from, to, cc, bcc),
    /// in that order: the one column list every index insert shares.
    fn bind_headers<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        query
            .bind(&self.header)
            .bind(&self.subject)
            .bind(&self.from)
            .bind(&self.to)
            .bind(&self.cc)
            .bind(&self.bcc)
    }
}

/// Parses `raw` once for both the stored metadata and the index (its body text unless `text` is
/// [`BodyText::Deferred`]).
pub(crate) fn analyse(raw: &[u8], text: BodyText) -> Result<Analysed> {
    let message = MessageParser::default().parse(raw);
    let parsed = ParsedMessage::of(message.as_ref(), raw);
    let json = serde_json::to_string(&parsed)
        .map_err(|e| StoreError::invalid("parsed message", e.to_string()))?;
    let header = raw
        .get(..parsed.body.body_start as usize)
        .unwrap_or_default()
        .to_vec();
    let s = &parsed.search;
    let (subject, from, to, cc, bcc) = (
        fold(&s.subject),
        fold(&s.from),
        fold(&s.to),
        fold(&s.cc),
        fold(&s.bcc),
    );
    let header_text = [
        fold(&String::from_utf8_lossy(&header)),
        subject.clone(),
        from.clone(),
        to.clone(),
        cc.clone(),
        bcc.clone(),
    ]
    .join("\n");
    let body_text = match (&message, text) {
        (_, BodyText::Deferred) => None,
        (Some(m), BodyText::Now) => {
            let mut text = String::new();
            body_text(m, &mut text, 0);
            Some(text)
        }
        (None, BodyText::Now) => Some(fold(&String::from_utf8_lossy(raw))),
    };
    Ok(Analysed {
        json,
        index: IndexEntry {
            header,
            subject,
            from,
            to,
            cc,
            bcc,
            header_text,
            body_text,
        },
    })
}

/// Nesting depth of message/rfc822 parts beyond which their text is not indexed (as in
/// `parsed.rs`).
const MAX_DEPTH: usize = 20;

/// Appends the folded decoded text of every text part of `message` (attachments too; HTML as
/// text; the header of an encapsulated message is part of the body, RFC 3501 §6.4.4), each part
/// on its own line. Binary parts contribute nothing, so their encoded bytes never match.
fn body_text(message: &Message, out: &mut String, depth: usize) {
    for part in &message.parts {
        match &part.body {
            PartType::Text(t) => out.push_str(&fold(t)),
            PartType::Html(h) => out.push_str(&fold(&html_to_text(h))),
            PartType::Message(nested) if depth < MAX_DEPTH => {
                let end = nested.parts.first().map_or(0, |p| p.offset_body as usize);
                let header = nested.raw_message.get(..end).unwrap_or_default();
                out.push_str(&fold(&String::from_utf8_lossy(header)));
                body_text(nested, out, depth + 1);
            }
            _ => continue,
        }
        out.push('\n');
    }
}

/// Writes the index row of blob `hash`, unless it has one or the blob is gone.
pub(crate) async fn insert_index(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    hash: &str,
    e: &IndexEntry,
) -> Result<()> {
    let stored = sqlx::query("SELECT 1 AS one FROM blobs WHERE hash = $1")
        .bind(hash)
        .fetch_optional(&mut **tx)
        .await?;
    if stored.is_some() {
        insert_indexes(tx, backend, &[(hash, e)]).await?;
    }
    Ok(())
}

/// Writes the index rows of stored blobs `(hash, entry)` that have none, with one multi-row
/// INSERT per [`ROWS_PER_STATEMENT`] entries.
pub(crate) async fn insert_indexes(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    entries: &[(&str, &IndexEntry)],
) -> Result<()> {
    for group in entries.chunks(ROWS_PER_STATEMENT) {
        match backend {
            Backend::Sqlite => {
                let sql = format!(
                    "INSERT INTO blob_index (hash, header, subject, from_text, to_text, cc_text, \
                     bcc_text) VALUES {} ON CONFLICT (hash) DO NOTHING RETURNING id, hash",
                    values_rows(group.len(), 7, 1)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (hash, e) in group {
                    query = e.bind_headers(query.bind(*hash));
                }
                let rows = query.fetch_all(&mut **tx).await?;
                let mut texts = Vec::with_capacity(rows.len());
                let mut pending = Vec::new();
                for row in &rows {
                    let hash: String = get(row, "hash")?;
                    if let Some((h, e)) = group.iter().find(|(h, _)| *h == hash) {
                        match &e.body_text {
                            Some(body) => {
                                texts.push((get::<i64>(row, "id")?, &e.header_text, body))
                            }
                            None => pending.push(*h),
                        }
                    }
                }
                mark_pending(tx, &pending).await?;
                if texts.is_empty() {
                    continue;
                }
                let sql = format!(
                    "INSERT INTO blob_text (rowid, header, body) VALUES {}",
                    values_rows(texts.len(), 3, 1)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, header, body) in texts {
                    query = query.bind(id).bind(header).bind(body);
                }
                query.execute(&mut **tx).await?;
            }
            Backend::Postgres => {
                let sql = format!(
                    "INSERT INTO blob_index (hash, header, subject, from_text, to_text, cc_text, \
                     bcc_text, header_text, body_text) VALUES {} ON CONFLICT (hash) DO NOTHING \
                     RETURNING hash",
                    values_rows(group.len(), 9, 1)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (hash, e) in group {
                    query = e
                        .bind_headers(query.bind(*hash))
                        .bind(&e.header_text)
                        .bind(e.body_text.as_deref().unwrap_or_default());
                }
                let inserted: HashSet<String> = query
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|row| get::<String>(row, "hash"))
                    .collect::<Result<_>>()?;
                let pending: Vec<&str> = group
                    .iter()
                    .filter(|(h, e)| e.body_text.is_none() && inserted.contains(*h))
                    .map(|(h, _)| *h)
                    .collect();
                mark_pending(tx, &pending).await?;
            }
        }
    }
    Ok(())
}

/// A blob row to insert with its index row ([`insert_blobs_indexed`]): hash, size, inline data,
/// parsed metadata, chunked, and the index entry.
pub(crate) type IndexedBlob<'a> = (&'a str, i64, &'a [u8], &'a str, i64, &'a IndexEntry);

/// Columns of one row of [`insert_blobs_indexed`].
const INDEXED_BLOB_COLUMNS: usize = 14;

/// On PostgreSQL, inserts the blob rows `blobs` (at most [`ROWS_PER_STATEMENT`], in hash order,
/// each hash once) with their index rows and, for a deferred body text, their
/// `blob_text_pending` rows, in one statement (one round trip), except blobs stored already:
/// their existing rows are locked as in [`crate::blobs::put_blobs`]. Returns the hashes whose
/// blob rows went in.
pub(crate) async fn insert_blobs_indexed(
    tx: &mut Transaction<'static, Any>,
    blobs: &[IndexedBlob<'_>],
) -> Result<HashSet<String>> {
    let rows = padded_rows(blobs.len());
    let sql = format!(
        "WITH v (hash, size, data, parsed, chunked, header, subject, from_text, to_text, cc_text, \
           bcc_text, header_text, body_text, deferred) AS (VALUES {}), \
         blob AS (INSERT INTO blobs (hash, size, data, parsed, chunked) \
           SELECT hash, size, data, parsed, chunked FROM v WHERE hash IS NOT NULL ORDER BY hash \
           {LOCK_KNOWN_BLOB}), \
         indexed AS (INSERT INTO blob_index (hash, header, subject, from_text, to_text, cc_text, \
           bcc_text, header_text, body_text) \
           SELECT v.hash, v.header, v.subject, v.from_text, v.to_text, v.cc_text, v.bcc_text, \
           v.header_text, v.body_text FROM v JOIN blob ON blob.hash = v.hash \
           ON CONFLICT (hash) DO NOTHING), \
         pending AS (INSERT INTO blob_text_pending (hash) \
           SELECT v.hash FROM v JOIN blob ON blob.hash = v.hash WHERE v.deferred \
           ON CONFLICT (hash) DO NOTHING) \
         SELECT hash FROM blob",
        values_rows(rows, INDEXED_BLOB_COLUMNS, 1)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for &(hash, size, inline, parsed, chunked, e) in blobs {
        query = e
            .bind_headers(
                query
                    .bind(hash)
                    .bind(size)
                    .bind(inline)
                    .bind(parsed)
                    .bind(chunked),
            )
            .bind(&e.header_text)
            .bind(e.body_text.as_deref().unwrap_or_default())
            .bind(e.body_text.is_none());
    }
    for _ in blobs.len()..rows {
        query = query
            .bind(None::<&str>)
            .bind(None::<i64>)
            .bind(None::<&[u8]>)
            .bind(None::<&str>)
            .bind(None::<i64>)
            .bind(None::<&[u8]>);
        for _ in 0..7 {
            query = query.bind(None::<&str>);
        }
        query = query.bind(None::<bool>);
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| get::<String>(row, "hash"))
        .collect()
}

/// How many unindexed blobs one indexing query picks up.
const INDEX_BATCH: i64 = 64;

/// Whether `needle` is too short for a trigram index: fewer than three characters make no
/// trigram, so such a search reads the texts themselves.
fn short(needle: &str) -> bool {
    needle.chars().count() < 3
}

/// The query for the UIDs of mailbox `$1` whose `key` text contains the folded `needle`, bound as
/// `$2` ([`argument`]).
///
/// On SQLite, a string of three or more characters is looked up in an FTS5 trigram index
/// (`blob_text` for BODY and TEXT, `blob_fields` for the header keys, migration 0032), which
/// drives the query: each blob it names is joined to the mailbox's messages through
/// `messages (mailbox_id, blob_hash)`. (Written as `i.id IN (SELECT rowid ...)` instead, SQLite
/// looked up every message of the mailbox once per blob found.) A shorter string reads the texts
/// of the mailbox's messages; the header keys read them from the index that holds them
/// (migration 0026), which the planner passes over for the unique index on `hash` alone and then
/// reads every row, header block included. On PostgreSQL every key is `LIKE`, served by a pg_trgm
/// GIN index (migrations 0022 and 0026).
fn search_sql(backend: Backend, key: TextKey, needle: &str) -> String {
    let header_key = !matches!(key, TextKey::Body | TextKey::Text);
    if backend == Backend::Sqlite && !short(needle) {
        let table = if header_key {
            "blob_fields"
        } else {
            "blob_text"
        };
        return format!(
            "SELECT m.uid FROM {table} f CROSS JOIN blob_index i CROSS JOIN messages m \
             WHERE f.{table} MATCH $2 AND i.id = f.rowid \
             AND m.mailbox_id = $1 AND m.blob_hash = i.hash"
        );
    }
    let condition = match (backend, key) {
        (Backend::Sqlite, TextKey::Subject) => "instr(i.subject, $2) > 0",
        (Backend::Sqlite, TextKey::From) => "instr(i.from_text, $2) > 0",
        (Backend::Sqlite, TextKey::To) => "instr(i.to_text, $2) > 0",
        (Backend::Sqlite, TextKey::Cc) => "instr(i.cc_text, $2) > 0",
        (Backend::Sqlite, TextKey::Bcc) => "instr(i.bcc_text, $2) > 0",
        (Backend::Sqlite, TextKey::Body) => {
            "i.id IN (SELECT rowid FROM blob_text WHERE rowid = i.id AND instr(body, $2) > 0)"
        }
        (Backend::Sqlite, TextKey::Text) => {
            "i.id IN (SELECT rowid FROM blob_text WHERE rowid = i.id \
             AND (instr(header, $2) > 0 OR instr(body, $2) > 0))"
        }
        (Backend::Postgres, TextKey::Subject) => "i.subject LIKE $2",
        (Backend::Postgres, TextKey::From) => "i.from_text LIKE $2",
        (Backend::Postgres, TextKey::To) => "i.to_text LIKE $2",
        (Backend::Postgres, TextKey::Cc) => "i.cc_text LIKE $2",
        (Backend::Postgres, TextKey::Bcc) => "i.bcc_text LIKE $2",
        (Backend::Postgres, TextKey::Body) => "i.body_text LIKE $2",
        (Backend::Postgres, TextKey::Text) => "(i.header_text LIKE $2 OR i.body_text LIKE $2)",
    };
    let hint = if backend == Backend::Sqlite && header_key {
        " INDEXED BY blob_index_fields"
    } else {
        ""
    };
    format!(
        "SELECT m.uid FROM messages m JOIN blob_index i{hint} ON i.hash = m.blob_hash \
         WHERE m.mailbox_id = $1 AND {condition}"
    )
}

/// The FTS5 column of `blob_text` (BODY) or `blob_fields` (header keys) a SQLite phrase is
/// limited to; TEXT matches both columns of `blob_text`.
fn fts_column(key: TextKey) -> Option<&'static str> {
    match key {
        TextKey::Subject => Some("subject"),
        TextKey::From => Some("from_text"),
        TextKey::To => Some("to_text"),
        TextKey::Cc => Some("cc_text"),
        TextKey::Bcc => Some("bcc_text"),
        TextKey::Body => Some("body"),
        TextKey::Text => None,
    }
}

/// The value bound as `$2` for [`search_sql`]: the folded string, as an FTS5 phrase (SQLite, three
/// or more characters: its double quotes doubled, so nothing in it is query syntax) or a `LIKE`
/// pattern (PostgreSQL, every key: its trigram indexes serve `LIKE`, migrations 0022 and 0026).
fn argument(backend: Backend, key: TextKey, needle: &str) -> String {
    match backend {
        Backend::Sqlite if !short(needle) => {
            let phrase = format!("\"{}\"", needle.replace('"', "\"\""));
            match fts_column(key) {
                Some(column) => format!("{column} : {phrase}"),
                None => phrase,
            }
        }
        Backend::Postgres => {
            let mut pattern = String::with_capacity(needle.len() + 2);
            pattern.push('%');
            for c in needle.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        }
        Backend::Sqlite => needle.to_owned(),
    }
}

impl Store {
    /// UIDs of the messages of `mailbox` whose `key` text contains `needle`, compared
    /// case-insensitively after [`fold`] (SEARCH, RFC 3501 §6.4.4). The empty string matches every
    /// message.
    pub async fn search_text(
        &self,
        mailbox: &Mailbox,
        key: TextKey,
        needle: &str,
    ) -> Result<HashSet<i64>> {
        self.index_mailbox(mailbox).await?;
        let needle = fold(needle);
        let sql = search_sql(self.backend, key, &needle);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox.id)
            .bind(argument(self.backend, key, &needle))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| get(r, "uid")).collect()
    }

    /// Indexes every stored message's blob that has no index row yet (blobs stored before the
    /// index existed, or restored from a backup), then the body texts deliveries left pending
    /// ([`crate::deferred_text`]), and returns how many blobs it indexed. Once it has run to the
    /// end, SEARCH in this process no longer looks for blobs without an index row: every blob
    /// stored since came with its row ([`insert_index`] runs in the transaction that stores it).
    pub async fn index_backlog(&self) -> Result<usize> {
        let done = self
            .index_missing(
                "SELECT DISTINCT m.blob_hash AS hash FROM messages m \
                 WHERE NOT EXISTS (SELECT 1 FROM blob_index i WHERE i.hash = m.blob_hash) LIMIT $1",
                None,
            )
            .await?;
        self.indexed.store(true, Ordering::Release);
        Ok(done + self.index_pending(None).await?)
    }

    /// Indexes the blobs of `mailbox` that have no index row yet, unless
    /// [`Store::index_backlog`] has indexed them all, and then the pending body texts of its
    /// messages, so that the search that follows reads a complete index.
    async fn index_mailbox(&self, mailbox: &Mailbox) -> Result<usize> {
        let mut done = 0;
        if !self.indexed.load(Ordering::Acquire) {
            done += self
                .index_missing(
                    "SELECT DISTINCT m.blob_hash AS hash FROM messages m WHERE m.mailbox_id = $2 \
                     AND NOT EXISTS (SELECT 1 FROM blob_index i WHERE i.hash = m.blob_hash) \
                     LIMIT $1",
                    Some(mailbox.id),
                )
                .await?;
        }
        Ok(done + self.index_pending(Some(mailbox.id)).await?)
    }

    /// Indexes, batch by batch, the blobs `pick` (limit `$1`, mailbox `$2` if given) returns.
    async fn index_missing(&self, pick: &'static str, mailbox: Option<i64>) -> Result<usize> {
        let mut done = 0;
        loop {
            let mut query = sqlx::query(pick).bind(INDEX_BATCH);
            if let Some(id) = mailbox {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.pool).await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for r in &rows {
                self.index_blob(&get::<String>(r, "hash")?).await?;
                done += 1;
            }
        }
    }

    /// Indexes one stored blob (one message in memory at a time) and returns its header block.
    pub(crate) async fn index_blob(&self, hash: &str) -> Result<Vec<u8>> {
        let raw = match read_blob(&self.pool, hash).await {
            // Expunged meanwhile: nothing to index.
            Err(StoreError::NotFound(_)) => return Ok(Vec::new()),
            other => other?,
        };
        let analysed = crate::blobs::blocking(|| analyse(&raw, BodyText::Now))?;
        drop(raw);
        let mut tx = self.write_tx().await?;
        insert_index(&mut tx, self.backend, hash, &analysed.index).await?;
        tx.commit().await?;
        Ok(analysed.index.header)
    }
}
