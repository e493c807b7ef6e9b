-- The web console's reclaim campaign (issue 17): installations taken from the idle list and
-- marked proposed -> confirmed -> removed, each step with its time and operator. The
-- application, device and license are kept by name and the cost as it was when proposed, and
-- the device is not a foreign key: the record of the money a campaign freed outlives a device
-- that is retired or forgotten after its software was removed. One item per installation.
CREATE TABLE reclaim_items (
    id            INTEGER PRIMARY KEY,
    application   TEXT NOT NULL,
    device_id     INTEGER NOT NULL,
    host_name     TEXT NOT NULL,
    units         INTEGER NOT NULL,
    cost_minor    INTEGER,
    currency      TEXT,
    license       TEXT,
    state         TEXT NOT NULL CHECK (state IN ('proposed', 'confirmed', 'removed')),
    proposed_at   TEXT NOT NULL,
    proposed_by   TEXT NOT NULL,
    confirmed_at  TEXT,
    confirmed_by  TEXT,
    removed_at    TEXT,
    removed_by    TEXT,
    UNIQUE (application, device_id)
);
CREATE INDEX reclaim_items_by_state ON reclaim_items (state);
