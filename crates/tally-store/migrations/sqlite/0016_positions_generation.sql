-- A generation counter for the license position (issue 16): every change to what a position
-- reads bumps it inside the changing transaction, so a computed position can be kept until
-- the data it was computed from changes (tally_service::positions). Heartbeats and other
-- columns no position reads (devices.last_seen, users.full_name, ...) leave it alone.
INSERT INTO counters (name, value) VALUES ('positions', 0);
CREATE TRIGGER applications_insert_positions AFTER INSERT ON applications
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER applications_update_positions AFTER UPDATE ON applications
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER applications_delete_positions AFTER DELETE ON applications
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER recognition_rules_insert_positions AFTER INSERT ON recognition_rules
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER recognition_rules_update_positions AFTER UPDATE ON recognition_rules
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER recognition_rules_delete_positions AFTER DELETE ON recognition_rules
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER licenses_insert_positions AFTER INSERT ON licenses
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER licenses_update_positions AFTER UPDATE ON licenses
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER licenses_delete_positions AFTER DELETE ON licenses
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER custom_values_insert_positions AFTER INSERT ON custom_values
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER custom_values_update_positions AFTER UPDATE ON custom_values
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER custom_values_delete_positions AFTER DELETE ON custom_values
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER org_nodes_insert_positions AFTER INSERT ON org_nodes
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER org_nodes_update_positions AFTER UPDATE ON org_nodes
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER org_nodes_delete_positions AFTER DELETE ON org_nodes
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER org_rules_insert_positions AFTER INSERT ON org_rules
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER org_rules_update_positions AFTER UPDATE ON org_rules
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER org_rules_delete_positions AFTER DELETE ON org_rules
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER status_changes_insert_positions AFTER INSERT ON status_changes
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER status_changes_update_positions AFTER UPDATE ON status_changes
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER status_changes_delete_positions AFTER DELETE ON status_changes
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER installed_software_insert_positions AFTER INSERT ON installed_software
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER installed_software_update_positions AFTER UPDATE ON installed_software
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER installed_software_delete_positions AFTER DELETE ON installed_software
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER usage_sessions_insert_positions AFTER INSERT ON usage_sessions
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER usage_sessions_update_positions AFTER UPDATE ON usage_sessions
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER usage_sessions_delete_positions AFTER DELETE ON usage_sessions
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER devices_insert_positions AFTER INSERT ON devices
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER devices_delete_positions AFTER DELETE ON devices
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER devices_update_positions AFTER UPDATE OF site_code, host_name, cpu_model, sockets, cores, pvu_per_core, status, org_node ON devices
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER users_insert_positions AFTER INSERT ON users
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER users_delete_positions AFTER DELETE ON users
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER users_update_positions AFTER UPDATE OF account, service_account, service_account_derived, service_account_override, status, org_node ON users
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
