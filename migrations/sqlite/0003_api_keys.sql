-- API keys (SPEC K): stored only as keyed hashes (crypto::secret_hash), with
-- the instances and scopes each key may use. Keys are never deleted, only
-- revoked, so the audit log and usage keep pointing at a row.

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY NOT NULL,
    -- v1:{master key id}:{base64url HMAC-SHA-256}; never the key itself.
    key_hash       TEXT NOT NULL,
    -- sek_ + 8 characters: enough to tell keys apart, useless to an attacker.
    display_prefix TEXT NOT NULL,
    name           TEXT NOT NULL,
    -- JSON array of instance ids, at least one.
    instances      TEXT NOT NULL,
    -- Space-separated scopes (RFC 6749 section 3.3).
    scope          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    expires_at     INTEGER,
    -- May lie in the future: a rotation with a grace period schedules it.
    revoked_at     INTEGER,
    -- Batched from the service's memory every few seconds, not per request.
    last_used_at   INTEGER,
    use_count      INTEGER NOT NULL DEFAULT 0,
    -- The key this one replaced by rotation.
    rotated_from   TEXT REFERENCES api_keys (id)
);

CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash);
CREATE INDEX api_keys_by_creation ON api_keys (created_at);
