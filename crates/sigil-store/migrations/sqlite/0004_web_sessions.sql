-- Sigil schema, version 4 (SQLite): web sessions in the database, so that every replica serves
-- them. The session id is kept only as a SHA-256; the key it stands for by id.
CREATE TABLE web_sessions (
    id_hash    BLOB    PRIMARY KEY,
    key_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE INDEX web_sessions_by_key ON web_sessions (key_id, created_at);
