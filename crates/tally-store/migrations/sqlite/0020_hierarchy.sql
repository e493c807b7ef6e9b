-- The site hierarchy (issue 19): joining a parent, and what travels between sites.
--
-- site_links, at a parent: one row per invited child. secret_hash holds the hash of the
-- one-time join secret until the child joins, then the hash of its site credential; a revoked
-- link refuses both.
CREATE TABLE site_links (
    code         TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    joined_at    TEXT,
    revoked_at   TEXT
);

-- Each site's sync status as its parent (or, for grandchildren, the intermediate site)
-- recorded it: last successful sync, when it last had nothing left to send, what it still held.
ALTER TABLE sites ADD COLUMN last_sync_at TEXT;
ALTER TABLE sites ADD COLUMN caught_up_at TEXT;
ALTER TABLE sites ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0;

-- A device received from a child keeps the identity it came with (machine-id, or origin site
-- and id there), so it is one device at every level and across a move between sites.
ALTER TABLE devices ADD COLUMN sync_key TEXT;
CREATE UNIQUE INDEX devices_sync_key ON devices (sync_key);

-- A rule copied from another site keeps its id there: edits and deletions are matched by it.
ALTER TABLE metering_rules ADD COLUMN origin_id INTEGER;
CREATE UNIQUE INDEX metering_rules_origin ON metering_rules (site_code, origin_id);

-- At a child: how far up-sync has got (the usage watermark) and each device's snapshot digest
-- as the parent last acknowledged it.
CREATE TABLE sync_state (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE sync_sent_devices (
    device_id  INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    digest     TEXT NOT NULL
);
