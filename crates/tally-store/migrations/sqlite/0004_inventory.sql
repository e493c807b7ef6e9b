-- Inventory: each device's installed software and the executables each package ships.
-- Replaced whole on every inventory upload from the device.

ALTER TABLE devices ADD COLUMN inventory_hash TEXT;

CREATE TABLE installed_software (
    device_id  INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    publisher  TEXT NOT NULL,
    PRIMARY KEY (device_id, name)
);

CREATE TABLE software_executables (
    device_id  INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    file_name  TEXT NOT NULL,
    package    TEXT NOT NULL,
    PRIMARY KEY (device_id, file_name)
);
CREATE INDEX software_executables_file_name ON software_executables (file_name);
