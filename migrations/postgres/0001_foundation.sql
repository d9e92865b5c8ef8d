-- Foundation: the MCP instance registry, signing keys and the audit log.
-- Times are unix seconds (BIGINT); JSON is TEXT. Only TEXT/BIGINT are used so
-- that the same queries run through sqlx's Any driver on SQLite and PostgreSQL
-- (Any has no JSONB or TIMESTAMPTZ).

CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    auth_mode     TEXT NOT NULL CHECK (auth_mode IN ('oauth', 'api_key', 'both', 'none')),
    method_scopes TEXT NOT NULL DEFAULT '{}',
    tool_scopes   TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    status       TEXT NOT NULL CHECK (status IN ('next', 'current', 'previous', 'retired')),
    -- Sealed by crypto::field (AES-256-GCM, key-id prefixed); NULL once retired.
    private_key  TEXT,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at   BIGINT
);

-- At most one next, one current and one previous key: two replicas can never
-- both create or promote a key.
CREATE UNIQUE INDEX signing_keys_one_per_live_status ON signing_keys (status) WHERE status <> 'retired';

CREATE TABLE audit_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    client_id TEXT,
    subject   TEXT,
    ip        TEXT,
    outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    reason    TEXT,
    details   TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_by_event ON audit_events (event, id);
CREATE INDEX audit_events_by_time ON audit_events (at);
