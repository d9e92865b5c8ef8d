-- User login federated to an upstream OpenID Connect provider (SPEC U, S2).
--
-- users: one row per person who logged in through the provider, created at
-- their first login and updated at each one (what the seed's Auth0 post-login
-- action did with a webhook). Their `subject` is the `sub` of the tokens we
-- issue for them. Email and profile are PII: sealed with the field cipher
-- (crypto::field), never stored in clear. Upstream tokens are not kept.
CREATE TABLE users (
    subject          TEXT PRIMARY KEY NOT NULL,
    -- The provider's `iss` and `sub`: who vouched for this user.
    issuer           TEXT NOT NULL,
    upstream_subject TEXT NOT NULL,
    -- Sealed (crypto::field) JSON strings; NULL when the provider sent none.
    email_sealed     TEXT,
    profile_sealed   TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_login_at    INTEGER NOT NULL,
    UNIQUE (issuer, upstream_subject)
);

-- A login in flight at the upstream provider, between the redirect to it and
-- its callback: our own `state` (stored as a keyed hash, the lookup key),
-- and the `nonce` and PKCE verifier (sealed together). Single use: the
-- callback deletes the row it uses.
CREATE TABLE oidc_logins (
    state_hash   TEXT PRIMARY KEY NOT NULL,
    request_id   TEXT NOT NULL,
    secrets      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX oidc_logins_expires_at ON oidc_logins (expires_at);
