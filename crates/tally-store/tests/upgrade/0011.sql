-- A database as schema 11 (history) left it, loaded by tests/migrations.rs before it upgrades
-- to the newest schema. Migration 12 adds machine identity to devices and a classification
-- with its reason to users, derived from local accounts, so those hold rows here (root a
-- service account on pc1, alice a person). The upgrade makes users that inventories classify
-- as service accounts service accounts, a change of value, so no such user is here;
-- tests/migrations.rs checks that upgrade on its own. One
-- text for both backends: no ids written (PostgreSQL's identities stay in step), times as
-- RFC 3339 text, booleans left to their defaults. The next fixture starts as a copy of this.

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
INSERT INTO local_accounts (device_id, name, uid, full_name, shell, service_account, reason)
    SELECT id, 'root', 0, 'root', '/bin/bash', TRUE, 'system uid' FROM devices WHERE host_name = 'pc1';
INSERT INTO local_accounts (device_id, name, uid, full_name, shell, service_account)
    SELECT id, 'alice', 1000, 'Alice Liddell', '/bin/bash', FALSE FROM devices WHERE host_name = 'pc1';
