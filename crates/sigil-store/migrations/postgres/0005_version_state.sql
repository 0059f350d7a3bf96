-- Sigil schema, version 5 (PostgreSQL): each version's own state and each secret's settings (what
-- Vault's KV v2 calls metadata). A version can be soft-deleted (`deleted_at`: from then on it is
-- not read; it may be set ahead, by `delete_version_after`) and undeleted, or destroyed (its
-- ciphertext wiped, the row kept as a tombstone). A secret keeps at most `max_versions` versions
-- (0: all, or the team's setting), needs a check-and-set on every write when `cas_required`,
-- soft-deletes each version `delete_version_after` ms after it is written (0: never), and carries
-- `custom_metadata` (a JSON object of strings). `oldest_version` is the oldest version kept once
-- `max_versions` has pruned older ones (0 until then). A team's `kv_*` columns are the same
-- settings for all its secrets (Vault's mount `config`).
ALTER TABLE secret_versions ADD COLUMN deleted_at BIGINT;
ALTER TABLE secret_versions ADD COLUMN destroyed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE secrets ADD COLUMN oldest_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE secrets ADD COLUMN max_versions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE secrets ADD COLUMN cas_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE secrets ADD COLUMN delete_version_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE secrets ADD COLUMN custom_metadata TEXT;
ALTER TABLE teams ADD COLUMN kv_max_versions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN kv_cas_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE teams ADD COLUMN kv_delete_version_after BIGINT NOT NULL DEFAULT 0;
