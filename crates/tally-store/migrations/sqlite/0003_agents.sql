-- Enrolment tokens, enrolled agents, and received usage batches (the idempotency record).

CREATE TABLE enrollment_tokens (
    id          INTEGER PRIMARY KEY,
    site_code   TEXT NOT NULL REFERENCES sites (code),
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    max_uses    INTEGER,
    uses        INTEGER NOT NULL DEFAULT 0,
    revoked_at  TEXT
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    device_id       INTEGER NOT NULL REFERENCES devices (id),
    secret_hash     TEXT NOT NULL,
    enrolled_at     TEXT NOT NULL,
    last_heartbeat  TEXT,
    agent_version   TEXT,
    dropped_records INTEGER NOT NULL DEFAULT 0,
    revoked_at      TEXT
);

CREATE TABLE usage_batches (
    device_id    INTEGER NOT NULL REFERENCES devices (id),
    batch_id     TEXT NOT NULL,
    stored       INTEGER NOT NULL,
    duplicates   INTEGER NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (device_id, batch_id)
);
