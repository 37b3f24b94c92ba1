-- API keys. Only a SHA-256 of each key is stored; `key_id` is the key's public part, used to find
-- the row. A key is never deleted or changed, only revoked once: its name is the `source` of the
-- events it appended, so the name must keep meaning the same party for as long as the ledger lives.
-- depends: 0002.immutable-events
CREATE TABLE api_keys (
    name text PRIMARY KEY,
    role text NOT NULL,
    departments text NOT NULL DEFAULT '',
    key_id text NOT NULL UNIQUE,
    key_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE FUNCTION api_keys_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
            AND (NEW.name, NEW.role, NEW.departments, NEW.key_id, NEW.key_hash, NEW.created_at)
                IS NOT DISTINCT FROM
                (OLD.name, OLD.role, OLD.departments, OLD.key_id, OLD.key_hash, OLD.created_at)
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'api keys are never deleted or changed, only revoked once: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_revoke_only();
CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_revoke_only();
