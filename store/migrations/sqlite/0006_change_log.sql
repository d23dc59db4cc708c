-- Changes committed by any process using this SQLite file (the server, the CLI, a second server
-- on the same file), so that every process learns of them: each process watches the database
-- files with inotify and reads the rows other processes wrote. Rows are pruned after minutes.
-- (PostgreSQL uses LISTEN/NOTIFY instead and has no such table.)
CREATE TABLE change_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    origin      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
