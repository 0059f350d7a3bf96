-- Sigil schema, version 1 (SQLite). Times are Unix milliseconds.
CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- per-team data keys, wrapped by the master key named by master_key_id
CREATE TABLE data_keys (
    team_id        INTEGER NOT NULL REFERENCES teams(id),
    version        INTEGER NOT NULL,
    master_key_id  TEXT    NOT NULL,
    wrapped        BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (team_id, version)
);

-- one row per secret: its latest version; deleted_at marks a soft delete
CREATE TABLE secrets (
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL,
    deleted_at  INTEGER,
    PRIMARY KEY (team_id, name)
) WITHOUT ROWID;

-- every version's sealed value
CREATE TABLE secret_versions (
    team_id           INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    data_key_version  INTEGER NOT NULL,
    ciphertext        BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    created_by        TEXT    NOT NULL,
    PRIMARY KEY (team_id, name, version)
) WITHOUT ROWID;

-- API keys: only a hash of the secret part is stored
CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    role        TEXT    NOT NULL,
    hash        BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    bootstrap   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_team ON api_keys(team_id);

-- who did what: never a value
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    role      TEXT,
    action    TEXT    NOT NULL,
    team      TEXT    NOT NULL,
    name      TEXT,
    version   INTEGER,
    outcome   TEXT    NOT NULL,
    client    TEXT    NOT NULL,
    flow_run  TEXT,
    task      TEXT
);
CREATE INDEX audit_team ON audit(team, id);
