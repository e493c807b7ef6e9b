-- License certificates and the system-metering report (issue 18, seed 003).
--
-- Issuers whose Ed25519 public keys are trusted, and the certificates verified against them.
-- A certificate registers (or updates) a license, which it then backs (license_id).
CREATE TABLE certificate_issuers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    public_key  TEXT NOT NULL UNIQUE,
    trusted_at  TEXT NOT NULL,
    trusted_by  TEXT NOT NULL
);
CREATE TABLE certificates (
    id           INTEGER PRIMARY KEY,
    cert_key     TEXT NOT NULL UNIQUE,
    customer     TEXT NOT NULL,
    product      TEXT NOT NULL,
    count        INTEGER NOT NULL,
    created      TEXT NOT NULL,
    expires      TEXT,
    metric       TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    signature    TEXT NOT NULL,
    license_id   INTEGER REFERENCES licenses (id),
    imported_at  TEXT NOT NULL,
    imported_by  TEXT NOT NULL
);
-- An application whose custom compare value the metering keeps: devices in relevant
-- statuses, natural persons, or operators with write access.
CREATE TABLE metering_measures (
    application_id  INTEGER PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    measure         TEXT NOT NULL
        CHECK (measure IN ('metered_devices', 'metered_users', 'metered_operators'))
);
-- Seed 003's four criteria per device status; a status is relevant when any applies.
CREATE TABLE device_status_relevance (
    status          TEXT PRIMARY KEY,
    compliance      BOOLEAN NOT NULL,
    end_of_life     BOOLEAN NOT NULL,
    principal_user  BOOLEAN NOT NULL,
    help_desk       BOOLEAN NOT NULL
);
INSERT INTO device_status_relevance VALUES ('in_stock', FALSE, FALSE, FALSE, FALSE);
INSERT INTO device_status_relevance VALUES ('active', TRUE, TRUE, TRUE, TRUE);
INSERT INTO device_status_relevance VALUES ('in_repair', TRUE, TRUE, TRUE, TRUE);
INSERT INTO device_status_relevance VALUES ('retired', FALSE, FALSE, FALSE, FALSE);
-- Mobile devices are told apart by their management type (e.g. 'mdm') where known.
ALTER TABLE devices ADD COLUMN management_type TEXT;
-- Seed 003's indication of a service user: "user cannot change password".
ALTER TABLE users ADD COLUMN cannot_change_password BOOLEAN NOT NULL DEFAULT FALSE;
-- Where an installation came from: NULL for inventory and import, 'certificate' for a license
-- certificate's fingerprint, which an agent's inventory of the same device leaves alone.
ALTER TABLE installed_software ADD COLUMN source TEXT;
