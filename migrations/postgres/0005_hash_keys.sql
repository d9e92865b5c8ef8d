-- The key of the keyed secret hashes (crypto::secret_hash, crypto::hash_key).
--
-- The first one is derived from the master key of the day and named by its
-- id, so hashes made before this table existed stay valid. It is kept here
-- sealed under the master key (crypto::field), so rotating the master key
-- re-seals it (`keys reencrypt`) instead of invalidating every stored hash of
-- an API key, client secret or refresh token: those secrets cannot be hashed
-- again, we never had them in clear after handing them out.
CREATE TABLE hash_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    sealed_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
