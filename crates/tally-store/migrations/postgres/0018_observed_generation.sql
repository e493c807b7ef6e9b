-- What agents observe (inventories, hardware, sessions built from their usage) moves its own
-- generation counter, `observed`, instead of `positions`: on a site with many agents something
-- arrives every second, and a kept license position would never be served. What people change
-- (licenses, applications, recognition, the org tree, statuses, overrides, imports) still moves
-- `positions`, so a kept position follows it at once; inventory and usage reach a kept position
-- within the site's `position_refresh_secs` (tally_service::positions). Imports, which may
-- write any of these tables, bump `positions` themselves.
INSERT INTO counters (name, value) VALUES ('observed', 0);
CREATE FUNCTION bump_observed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'observed';
    RETURN NULL;
END
$$;
DROP TRIGGER installed_software_positions ON installed_software;
DROP TRIGGER usage_sessions_positions ON usage_sessions;
DROP TRIGGER devices_update_positions ON devices;
DROP TRIGGER users_update_positions ON users;
CREATE TRIGGER installed_software_observed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON installed_software
    FOR EACH STATEMENT EXECUTE FUNCTION bump_observed();
CREATE TRIGGER usage_sessions_observed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usage_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_observed();
CREATE TRIGGER devices_update_positions AFTER UPDATE OF site_code, host_name, pvu_per_core, status, org_node ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER devices_update_observed AFTER UPDATE OF cpu_model, sockets, cores ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_observed();
CREATE TRIGGER users_update_positions AFTER UPDATE OF account, service_account_override, status, org_node ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER users_update_observed AFTER UPDATE OF service_account, service_account_derived ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_observed();
-- A device's and a user's page read their own monthly rows, not every row of the months.
CREATE INDEX monthly_usage_device ON monthly_usage (device_id, month);
CREATE INDEX monthly_usage_user ON monthly_usage (user_id, month);
