-- What agents observe (inventories, hardware, sessions built from their usage) moves its own
-- generation counter, `observed`, instead of `positions`: on a site with many agents something
-- arrives every second, and a kept license position would never be served. What people change
-- (licenses, applications, recognition, the org tree, statuses, overrides, imports) still moves
-- `positions`, so a kept position follows it at once; inventory and usage reach a kept position
-- within the site's `position_refresh_secs` (tally_service::positions). Imports, which may
-- write any of these tables, bump `positions` themselves.
INSERT INTO counters (name, value) VALUES ('observed', 0);
DROP TRIGGER installed_software_insert_positions;
DROP TRIGGER installed_software_update_positions;
DROP TRIGGER installed_software_delete_positions;
DROP TRIGGER usage_sessions_insert_positions;
DROP TRIGGER usage_sessions_update_positions;
DROP TRIGGER usage_sessions_delete_positions;
DROP TRIGGER devices_update_positions;
DROP TRIGGER users_update_positions;
CREATE TRIGGER installed_software_insert_observed AFTER INSERT ON installed_software
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER installed_software_update_observed AFTER UPDATE ON installed_software
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER installed_software_delete_observed AFTER DELETE ON installed_software
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER usage_sessions_insert_observed AFTER INSERT ON usage_sessions
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER usage_sessions_update_observed AFTER UPDATE ON usage_sessions
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER usage_sessions_delete_observed AFTER DELETE ON usage_sessions
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER devices_update_positions AFTER UPDATE OF site_code, host_name, pvu_per_core, status, org_node ON devices
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER devices_update_observed AFTER UPDATE OF cpu_model, sockets, cores ON devices
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
CREATE TRIGGER users_update_positions AFTER UPDATE OF account, service_account_override, status, org_node ON users
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'positions'; END;
CREATE TRIGGER users_update_observed AFTER UPDATE OF service_account, service_account_derived ON users
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'observed'; END;
-- A device's and a user's page read their own monthly rows, not every row of the months.
CREATE INDEX monthly_usage_device ON monthly_usage (device_id, month);
CREATE INDEX monthly_usage_user ON monthly_usage (user_id, month);
