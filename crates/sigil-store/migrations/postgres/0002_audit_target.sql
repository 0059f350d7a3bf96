-- Sigil schema, version 2 (PostgreSQL): a refusal of a request for another team is recorded in
-- the caller's own team's log, with the team it asked for (cut short) in a column of its own.
ALTER TABLE audit ADD COLUMN target TEXT;
