-- The OAuth authorization server: registered clients, pending authorization
-- requests, authorization codes, refresh-token families, revoked access tokens
-- and remembered consents.
--
-- Every secret we hand out (client secrets, registration access tokens, codes,
-- refresh tokens, the consent form's CSRF token, the browser-binding cookie) is
-- stored only as a keyed hash (crypto::secret_hash). Clients fetched as Client
-- ID Metadata Documents are not stored: they are cached in memory.

CREATE TABLE oauth_clients (
    client_id               TEXT PRIMARY KEY NOT NULL,
    -- JSON: the RFC 7591 metadata as registered (after defaults and validation).
    metadata                TEXT NOT NULL,
    -- NULL for public clients (token_endpoint_auth_method "none").
    secret_hash             TEXT,
    -- RFC 7592; NULL for clients an operator registered with the CLI.
    registration_token_hash TEXT,
    registered_by           TEXT NOT NULL CHECK (registered_by IN ('dcr', 'cli')),
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    -- Clients are revoked, not deleted, so audit rows keep pointing at one.
    revoked_at              INTEGER
);

-- An authorization request between GET /oauth/authorize and the redirect back
-- to the client: kept server-side so that a login at an upstream provider (and
-- any replica) can continue it by id.
CREATE TABLE authorization_requests (
    id           TEXT PRIMARY KEY NOT NULL,
    client_id    TEXT NOT NULL,
    -- JSON: the validated request (redirect URI, state, PKCE challenge, resources, scope).
    request      TEXT NOT NULL,
    -- Hash of the cookie of the browser that started it.
    browser_hash TEXT NOT NULL,
    -- Hash of the CSRF token of the consent form last shown.
    csrf_hash    TEXT,
    -- Set once the user has logged in.
    subject      TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);

CREATE INDEX authorization_requests_by_expiry ON authorization_requests (expires_at);

CREATE TABLE authorization_codes (
    code_hash          TEXT PRIMARY KEY NOT NULL,
    client_id          TEXT NOT NULL,
    subject            TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    -- 1 when the authorization request named the redirect URI (RFC 6749 4.1.3
    -- then requires it at the token endpoint).
    redirect_uri_given INTEGER NOT NULL,
    code_challenge     TEXT NOT NULL,
    -- JSON array of canonical resource URIs.
    resources          TEXT NOT NULL,
    scope              TEXT NOT NULL,
    -- 1 when a refresh token is to be issued with the access token.
    refresh            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    -- Set by the one redemption that wins (a conditional UPDATE).
    redeemed_at        INTEGER,
    -- What that redemption issued, so that a replay can revoke it.
    access_jti         TEXT,
    access_exp         INTEGER,
    family_id          TEXT
);

CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);

-- Every refresh token descends from one authorization; rotation adds a member,
-- reuse of a spent member revokes the family.
CREATE TABLE refresh_families (
    id             TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL,
    subject        TEXT NOT NULL,
    -- JSON array of canonical resource URIs granted.
    resources      TEXT NOT NULL,
    scope          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);

CREATE INDEX refresh_families_by_client ON refresh_families (client_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL REFERENCES refresh_families (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set by the one rotation that wins (a conditional UPDATE).
    rotated_at INTEGER,
    -- The access token issued together with this refresh token.
    access_jti TEXT,
    access_exp INTEGER
);

CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Access tokens revoked before their exp; published to the filter
-- (FilterPolicy.revoked) until they expire.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    exp        INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    reason     TEXT NOT NULL
);

CREATE INDEX revoked_access_tokens_by_exp ON revoked_access_tokens (exp);

-- What a user approved for a client, per resource, so a second login does not ask again.
CREATE TABLE consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    resource   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (subject, client_id, resource)
);
