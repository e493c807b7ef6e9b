-- Licensing (seed 002): applications and how software is recognised as them, licenses, custom
-- compare values, usage sessions for usage-based metrics, and daily compliance snapshots.
-- Org node names become unique so imports can refer to nodes by name.

CREATE UNIQUE INDEX org_nodes_name ON org_nodes (name);
CREATE INDEX devices_org_node ON devices (org_node);

CREATE TABLE applications (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    publisher          TEXT NOT NULL,
    metric             TEXT NOT NULL,
    -- NULL: the current calendar month; else a rolling number of days.
    period_days        INTEGER,
    total_user_metric  TEXT NOT NULL,
    created_at         TEXT NOT NULL
);

-- Installed software whose name (and publisher, version) match these wildcard patterns, and
-- usage of the named metering rule, count as the application.
CREATE TABLE recognition_rules (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    software        TEXT NOT NULL,
    publisher       TEXT NOT NULL,
    version         TEXT NOT NULL,
    metering_rule   TEXT NOT NULL
);
CREATE INDEX recognition_rules_application ON recognition_rules (application_id);

CREATE TABLE licenses (
    id                 INTEGER PRIMARY KEY,
    application_id     INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    metric             TEXT NOT NULL,
    quantity           INTEGER NOT NULL,
    assignment_type    TEXT NOT NULL,
    assigned_to        INTEGER,
    purchase_date      TEXT,
    valid_from         TEXT,
    valid_until        TEXT,
    maintenance_until  TEXT,
    unit_cost_minor    INTEGER,
    currency           TEXT,
    vendor             TEXT,
    order_reference    TEXT,
    notes              TEXT,
    created_at         TEXT NOT NULL
);
CREATE INDEX licenses_application ON licenses (application_id);

CREATE TABLE custom_values (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    org_node        INTEGER REFERENCES org_nodes (id),
    quantity        INTEGER NOT NULL
);

-- Stretches of use of an application by a user on a device (imported, or joined from runs).
CREATE TABLE usage_sessions (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    device_id       INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    start_time      TEXT NOT NULL,
    end_time        TEXT NOT NULL
);
CREATE INDEX usage_sessions_end ON usage_sessions (end_time);

CREATE TABLE compliance_snapshots (
    day             TEXT NOT NULL,
    application_id  INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    required        INTEGER NOT NULL,
    owned           INTEGER NOT NULL,
    covered         INTEGER NOT NULL,
    shortfall       INTEGER NOT NULL,
    surplus         INTEGER NOT NULL,
    status          TEXT NOT NULL,
    PRIMARY KEY (day, application_id)
);
