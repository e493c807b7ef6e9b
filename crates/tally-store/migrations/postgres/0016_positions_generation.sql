-- A generation counter for the license position (issue 16): every change to what a position
-- reads bumps it inside the changing transaction, so a computed position can be kept until
-- the data it was computed from changes (tally_service::positions). Heartbeats and other
-- columns no position reads (devices.last_seen, users.full_name, ...) leave it alone.
-- Statement-level triggers: one bump per statement, however many rows it writes.
INSERT INTO counters (name, value) VALUES ('positions', 0);
CREATE FUNCTION bump_positions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'positions';
    RETURN NULL;
END
$$;
CREATE TRIGGER applications_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER recognition_rules_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON recognition_rules
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER licenses_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON licenses
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER custom_values_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON custom_values
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER org_nodes_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON org_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER org_rules_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON org_rules
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER status_changes_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON status_changes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER installed_software_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON installed_software
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER usage_sessions_positions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usage_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER devices_positions AFTER INSERT OR DELETE OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER devices_update_positions AFTER UPDATE OF site_code, host_name, cpu_model, sockets, cores, pvu_per_core, status, org_node ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER users_positions AFTER INSERT OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
CREATE TRIGGER users_update_positions AFTER UPDATE OF account, service_account, service_account_derived, service_account_override, status, org_node ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_positions();
