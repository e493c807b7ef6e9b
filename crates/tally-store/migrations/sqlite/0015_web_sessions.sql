-- The web console's sign-in sessions (issue 17). Only the SHA-256 of a session's secret is
-- kept, so a copy of the database signs no one in. A session belongs to the operator token it
-- was opened with: revoking the token ends its sessions. Expiry (idle and absolute) is decided
-- from last_seen_at and created_at by the service.
CREATE TABLE web_sessions (
    id_hash            TEXT PRIMARY KEY,
    operator_token_id  INTEGER NOT NULL REFERENCES operator_tokens(id),
    created_at         TEXT NOT NULL,
    last_seen_at       TEXT NOT NULL
);
CREATE INDEX web_sessions_by_last_seen ON web_sessions (last_seen_at);
