-- Foundation: the MCP instance registry, signing keys and the audit log.
-- Times are unix seconds (INTEGER); JSON is TEXT. Only TEXT/INTEGER are used so
-- that the same queries run through sqlx's Any driver on SQLite and PostgreSQL.

CREATE TABLE instances (
    id            TEXT PRIMARY KEY NOT NULL,
    display_name  TEXT NOT NULL,
    auth_mode     TEXT NOT NULL CHECK (auth_mode IN ('oauth', 'api_key', 'both', 'none')),
    method_scopes TEXT NOT NULL DEFAULT '{}',
    tool_scopes   TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('next', 'current', 'previous', 'retired')),
    -- Sealed by crypto::field (AES-256-GCM, key-id prefixed); NULL once retired.
    private_key  TEXT,
    public_jwk   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER
);

-- At most one next, one current and one previous key: two replicas can never
-- both create or promote a key.
CREATE UNIQUE INDEX signing_keys_one_per_live_status ON signing_keys (status) WHERE status <> 'retired';

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
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
