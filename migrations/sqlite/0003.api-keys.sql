-- API keys. Only a SHA-256 of each key is stored; `key_id` is the key's public part, used to find
-- the row. A key is never deleted or changed, only revoked once: its name is the `source` of the
-- events it appended, so the name must keep meaning the same party for as long as the ledger lives.
-- depends: 0002.immutable-events
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    departments TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) WITHOUT ROWID;

CREATE TRIGGER api_keys_no_delete BEFORE DELETE ON api_keys
BEGIN SELECT RAISE(ABORT, 'api keys are never deleted: revoke them'); END;
CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE ON api_keys
WHEN OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
    OR NEW.name IS NOT OLD.name OR NEW.role IS NOT OLD.role
    OR NEW.departments IS NOT OLD.departments OR NEW.key_id IS NOT OLD.key_id
    OR NEW.key_hash IS NOT OLD.key_hash OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an api key can only be revoked, once'); END;
