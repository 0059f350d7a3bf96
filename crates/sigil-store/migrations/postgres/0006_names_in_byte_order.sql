-- Sigil schema, version 6 (PostgreSQL): secrets listed in byte order (`COLLATE "C"`, as SQLite
-- orders them, so pages and cursors agree on both backends) find them through an index in that
-- order. The primary key is in the database's own collation: under any other than "C" a list
-- page scanned and sorted every secret of the team (280 ms for a page of 100 among a million).
CREATE INDEX secrets_team_name_bytes ON secrets (team_id, (name COLLATE "C"));
