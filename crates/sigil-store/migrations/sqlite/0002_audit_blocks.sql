-- Sigil schema, version 2 (SQLite): a cheaper audit log.
-- Ids are rowids in commit order, without AUTOINCREMENT's bookkeeping (the log is never
-- deleted from, so ids are never reused). A team's records are found through a block-range
-- index (which teams have records in each block of 1024 ids) instead of a per-row index:
-- that index cost a second B-tree insert per record and a page per commit, about 8 % of
-- audited reads per second.
CREATE TABLE audit_v2 (
    id        INTEGER PRIMARY KEY,
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
INSERT INTO audit_v2 (id, at, key_id, role, action, team, name, version, outcome, client, flow_run, task)
    SELECT id, at, key_id, role, action, team, name, version, outcome, client, flow_run, task FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v2 RENAME TO audit;

CREATE TABLE audit_blocks (
    team   TEXT    NOT NULL,
    block  INTEGER NOT NULL,   -- id >> 10
    PRIMARY KEY (team, block)
) WITHOUT ROWID;
INSERT INTO audit_blocks (team, block) SELECT DISTINCT team, id >> 10 FROM audit;
