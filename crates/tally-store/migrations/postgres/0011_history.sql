-- What compliance needs to show a position as it stood on an earlier day.
--
-- Installed software becomes a history: an inventory that no longer lists a package marks its
-- row removed instead of deleting it, and a reinstallation is a new row, so every period a
-- package was installed is kept. installed_at is when Tally first saw it (inventory) or the
-- date an import gave; NULL means "before Tally knew", which counts on every day. Only the
-- current row of a device's package is unique now.
ALTER TABLE installed_software DROP CONSTRAINT installed_software_pkey;
ALTER TABLE installed_software ADD COLUMN installed_at TIMESTAMPTZ;
ALTER TABLE installed_software ADD COLUMN removed_at TIMESTAMPTZ;
CREATE UNIQUE INDEX installed_software_current ON installed_software (device_id, name)
    WHERE removed_at IS NULL;
DROP INDEX installed_software_title;
CREATE INDEX installed_software_title
    ON installed_software (name, publisher, version, device_id, installed_at, removed_at);

-- A device's or user's status before each change (import is what changes statuses), so the
-- status on a past day is the earliest later change's old status, or else the current one.
CREATE TABLE status_changes (
    subject     TEXT NOT NULL CHECK (subject IN ('device', 'user')),
    subject_id  BIGINT NOT NULL,
    old_status  TEXT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX status_changes_at ON status_changes (changed_at);
