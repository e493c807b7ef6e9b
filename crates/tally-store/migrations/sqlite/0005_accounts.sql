-- Local accounts from each device's inventory, with the agent's service-account
-- classification (seed 003: service accounts are not relevant for licensing). Replaced whole
-- with the rest of the inventory. Memory joins the hardware columns.

ALTER TABLE devices ADD COLUMN memory_bytes INTEGER;

CREATE TABLE local_accounts (
    device_id        INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    uid              INTEGER NOT NULL,
    full_name        TEXT,
    shell            TEXT NOT NULL,
    service_account  BOOLEAN NOT NULL,
    reason           TEXT,
    PRIMARY KEY (device_id, name)
);
