-- A database as schema 22 left it, loaded by tests/migrations.rs before it upgrades to the
-- newest schema. Migrations 20 to 22 are in schema 19's fixture already (their new columns keep
-- their defaults; PostgreSQL's TimeSerial sequence, from migration 21, is set where the counter
-- stands, 41, by postgres/0022.more.sql, so the usage records keep their serials and new ones
-- come after them). Migration 23 adds a column to devices, where pc1 and pc2 are. One text for
-- both backends: no ids written (PostgreSQL's identities stay in step), times as RFC 3339 text,
-- booleans left to their defaults. The next fixture starts as a copy of this.

INSERT INTO sites (code, name) VALUES ('S01', 'Main');
INSERT INTO org_nodes (name) VALUES ('HQ');
INSERT INTO org_rules (org_node, site, host_name)
    SELECT id, 'S01', 'pc*' FROM org_nodes WHERE name = 'HQ';
INSERT INTO users (account, full_name) VALUES ('alice', 'Alice Liddell');

INSERT INTO devices (site_code, host_name, os, sockets, cores, inventory_hash, created_at)
    VALUES ('S01', 'pc1', 'Debian 12', 1, 4, 'h1', '2026-01-05T08:00:00+00:00');
INSERT INTO devices (site_code, host_name, inventory_hash, created_at)
    VALUES ('S01', 'pc2', 'h2', '2026-01-06T08:00:00+00:00');

INSERT INTO installed_software (device_id, name, version, publisher)
    SELECT id, 'Office', '16.0', 'Microsoft' FROM devices WHERE host_name = 'pc1';
INSERT INTO installed_software (device_id, name, version, publisher)
    SELECT id, 'Chat', '2.1', 'Acme' FROM devices WHERE host_name = 'pc1';
INSERT INTO installed_software (device_id, name, version, publisher)
    SELECT id, 'Office', '15.0', 'Microsoft' FROM devices WHERE host_name = 'pc2';
INSERT INTO software_executables (device_id, file_name, package)
    SELECT id, 'winword', 'Office' FROM devices WHERE host_name = 'pc1';

INSERT INTO applications (name, publisher, metric, period_days, total_user_metric, created_at)
    VALUES ('Office', 'Microsoft', 'installations', NULL, 'metered_users',
        '2026-01-05T08:00:00+00:00');
INSERT INTO licenses (application_id, metric, quantity, assignment_type, assigned_to,
        valid_until, unit_cost_minor, currency, created_at)
    SELECT id, 'installations', 10, 'organization', NULL, '2027-01-01', 44900, 'EUR',
        '2026-01-06T08:00:00+00:00' FROM applications WHERE name = 'Office';
INSERT INTO metering_rules (site_code, name, file_name, original_file_name, file_version,
        language, product_name, comment, apply_to_child_sites, enabled, origin, updated_at)
    VALUES ('S01', 'Snoozer', 'snooze', '', '*', 65535, '', '', TRUE, TRUE, 'manual',
        '2026-01-01T00:00:00+00:00');
INSERT INTO metering_rules (site_code, name, file_name, original_file_name, file_version,
        language, product_name, comment, apply_to_child_sites, enabled, origin, updated_at)
    VALUES ('S01', 'Editor', 'code', '', '*', 65535, '', '', TRUE, TRUE, 'manual',
        '2026-01-01T00:00:00+00:00');
INSERT INTO metering_rules (site_code, name, file_name, original_file_name, file_version,
        language, product_name, comment, apply_to_child_sites, enabled, origin, updated_at)
    VALUES ('S01', 'SNOOZER (2)', 'snooze2', '', '*', 65535, '', '', TRUE, TRUE, 'manual',
        '2026-01-02T00:00:00+00:00');
INSERT INTO local_accounts (device_id, name, uid, full_name, shell, service_account, reason)
    SELECT id, 'root', 0, 'root', '/bin/bash', TRUE, 'system uid' FROM devices WHERE host_name = 'pc1';
INSERT INTO local_accounts (device_id, name, uid, full_name, shell, service_account)
    SELECT id, 'alice', 1000, 'Alice Liddell', '/bin/bash', FALSE FROM devices WHERE host_name = 'pc1';

INSERT INTO operator_tokens (name, role, token_hash, created_at)
    VALUES ('console', 'admin', 'c0ffee', '2026-11-30T08:00:00+00:00');
INSERT INTO web_sessions (id_hash, operator_token_id, created_at, last_seen_at)
    SELECT 'f00d', id, '2026-11-30T09:00:00+00:00', '2026-11-30T09:05:00+00:00'
    FROM operator_tokens ORDER BY id LIMIT 1;

INSERT INTO reclaim_items (application, device_id, host_name, units, cost_minor, currency,
        license, state, proposed_at, proposed_by, confirmed_at, confirmed_by)
    SELECT 'Office', id, 'pc2', 1, 44900, 'EUR', 'Office, 10 installations', 'confirmed',
        '2026-11-30T10:00:00+00:00', 'console', '2026-11-30T11:00:00+00:00', 'console'
    FROM devices WHERE host_name = 'pc2';
INSERT INTO reclaim_items (application, device_id, host_name, units, state, proposed_at,
        proposed_by)
    SELECT 'Chat', id, 'pc1', 1, 'proposed', '2026-11-30T10:05:00+00:00', 'console'
    FROM devices WHERE host_name = 'pc1';

-- Migration 21 adds a column to agents.
INSERT INTO agents (id, device_id, secret_hash, enrolled_at, agent_version, dropped_records)
    SELECT 'agent-pc1', id, 'hash-of-secret', '2026-01-05T08:00:00+00:00', '0.1.0', 3
    FROM devices WHERE host_name = 'pc1';

-- Usage written under serials up to 41: the next one must be 42 on either backend.
UPDATE counters SET value = 41 WHERE name = 'time_serial';
