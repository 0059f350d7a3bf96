-- Sigil schema, version 5 (SQLite): which face a request came through (`api`, `web`, `prefect`,
-- `vault`) and the client software when it says (the Prefect client's version). Older records
-- have neither.
ALTER TABLE audit ADD COLUMN via TEXT;
ALTER TABLE audit ADD COLUMN agent TEXT;
