-- Sigil schema, version 1 (PostgreSQL). Times are Unix milliseconds.
CREATE TABLE teams (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE data_keys (
    team_id        BIGINT NOT NULL REFERENCES teams(id),
    version        INTEGER NOT NULL,
    master_key_id  TEXT   NOT NULL,
    wrapped        BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (team_id, version)
);

CREATE TABLE secrets (
    team_id     BIGINT NOT NULL REFERENCES teams(id),
    name        TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT   NOT NULL,
    deleted_at  BIGINT,
    PRIMARY KEY (team_id, name)
);

CREATE TABLE secret_versions (
    team_id           BIGINT  NOT NULL,
    name              TEXT    NOT NULL,
    version           BIGINT  NOT NULL,
    data_key_version  INTEGER NOT NULL,
    ciphertext        BYTEA   NOT NULL,
    created_at        BIGINT  NOT NULL,
    created_by        TEXT    NOT NULL,
    PRIMARY KEY (team_id, name, version)
);

CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    team_id     BIGINT  NOT NULL REFERENCES teams(id),
    role        TEXT    NOT NULL,
    hash        BYTEA   NOT NULL,
    name        TEXT    NOT NULL,
    bootstrap   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_team ON api_keys(team_id);

CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    key_id    TEXT   NOT NULL,
    role      TEXT,
    action    TEXT   NOT NULL,
    team      TEXT   NOT NULL,
    name      TEXT,
    version   BIGINT,
    outcome   TEXT   NOT NULL,
    client    TEXT   NOT NULL,
    flow_run  TEXT,
    task      TEXT
);
CREATE INDEX audit_team ON audit(team, id);
