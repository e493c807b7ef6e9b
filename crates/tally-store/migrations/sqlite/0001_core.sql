-- Core entities of the domain model: sites, org tree, devices, users, files, rules, usage.
-- Timestamps are RFC 3339 text in UTC; booleans are 0/1.

CREATE TABLE sites (
    code    TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    alias   TEXT,
    parent  TEXT REFERENCES sites (code)
);

CREATE TABLE org_nodes (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    parent  INTEGER REFERENCES org_nodes (id)
);

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    site_code     TEXT NOT NULL REFERENCES sites (code),
    host_name     TEXT NOT NULL,
    fqdn          TEXT,
    os            TEXT,
    serial        TEXT,
    cpu_model     TEXT,
    sockets       INTEGER,
    cores         INTEGER,
    threads       INTEGER,
    pvu_per_core  INTEGER,
    is_virtual    BOOLEAN NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'active',
    org_node      INTEGER REFERENCES org_nodes (id),
    last_seen     TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX devices_host_name ON devices (host_name);

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    account          TEXT NOT NULL UNIQUE,
    full_name        TEXT,
    service_account  BOOLEAN NOT NULL DEFAULT 0,
    status           TEXT NOT NULL DEFAULT 'active',
    org_node         INTEGER REFERENCES org_nodes (id)
);

CREATE TABLE files (
    id                  INTEGER PRIMARY KEY,
    file_name           TEXT NOT NULL,
    original_file_name  TEXT NOT NULL,
    version             TEXT NOT NULL,
    product_name        TEXT NOT NULL,
    publisher           TEXT NOT NULL,
    language            INTEGER NOT NULL,
    UNIQUE (file_name, original_file_name, version, product_name, publisher, language)
);

CREATE TABLE metering_rules (
    id                    INTEGER PRIMARY KEY,
    site_code             TEXT NOT NULL REFERENCES sites (code),
    name                  TEXT NOT NULL,
    file_name             TEXT NOT NULL,
    original_file_name    TEXT NOT NULL,
    file_version          TEXT NOT NULL,
    language              INTEGER NOT NULL,
    product_name          TEXT NOT NULL,
    comment               TEXT NOT NULL,
    apply_to_child_sites  BOOLEAN NOT NULL,
    enabled               BOOLEAN NOT NULL,
    origin                TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

-- One row per report on a running program (SMS_MeterData). The seed's keys are MeterDataID and
-- EndTime; the device is part of the key so one agent cannot collide with another's ids.
CREATE TABLE usage_records (
    id                  INTEGER PRIMARY KEY,
    device_id           INTEGER NOT NULL REFERENCES devices (id),
    meter_data_id       TEXT NOT NULL,
    file_id             INTEGER NOT NULL REFERENCES files (id),
    user_id             INTEGER NOT NULL REFERENCES users (id),
    start_time          TEXT NOT NULL,
    start_time_offset   INTEGER NOT NULL,
    end_time            TEXT NOT NULL,
    end_time_offset     INTEGER NOT NULL,
    started             BOOLEAN NOT NULL,
    still_running       BOOLEAN NOT NULL,
    start_not_captured  BOOLEAN NOT NULL,
    end_not_captured    BOOLEAN NOT NULL,
    in_ts_session       BOOLEAN NOT NULL,
    time_serial         INTEGER NOT NULL,
    released            BOOLEAN NOT NULL DEFAULT 0,
    UNIQUE (device_id, meter_data_id, end_time)
);
CREATE INDEX usage_records_time_serial ON usage_records (time_serial);
CREATE INDEX usage_records_end_time ON usage_records (end_time);

-- Monotonic counters taken inside write transactions (TimeSerial).
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('time_serial', 0);
