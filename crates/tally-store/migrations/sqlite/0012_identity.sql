-- Identity of machines and of the people behind accounts (issue 16, items 3 and 4).
--
-- A device keeps its machine across re-enrolment: agents report /etc/machine-id, and an
-- enrolment with a known machine-id (or, without a match, a known real DMI serial) reuses that
-- device (docs/agent.md). Both are indexed so the lookup is one probe each.
ALTER TABLE devices ADD COLUMN machine_id TEXT;
CREATE INDEX devices_machine_id ON devices (machine_id);
CREATE INDEX devices_serial ON devices (serial);

-- Whether a user is a service account, and why. service_account stays the flag everything
-- reads (the effective one); service_account_derived is what inventory or import said,
-- service_account_reason says why, and service_account_override is an administrator's choice
-- (NULL: none), which wins and survives new inventories.
ALTER TABLE users ADD COLUMN service_account_derived BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN service_account_reason TEXT;
ALTER TABLE users ADD COLUMN service_account_override BOOLEAN;
CREATE INDEX local_accounts_name ON local_accounts (name);

-- What was stored before came from import; accounts that inventories already classify as
-- service accounts (root, nobody, daemons) become service accounts now, not at the next
-- inventory.
UPDATE users SET service_account_derived = service_account,
    service_account_reason = CASE WHEN service_account THEN 'service account, from import' END;
UPDATE users SET service_account_derived = 1, service_account = 1,
    service_account_reason = (
        SELECT COALESCE(la.reason, 'service account') || ', from inventory of ' || d.host_name
        FROM local_accounts la JOIN devices d ON d.id = la.device_id
        WHERE la.name = users.account AND la.service_account
        ORDER BY d.id LIMIT 1)
    WHERE NOT service_account AND EXISTS (
        SELECT 1 FROM local_accounts la WHERE la.name = users.account AND la.service_account);
