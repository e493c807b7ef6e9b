-- Compliance reads each installed title's devices, and each application's sessions of a
-- metering period, from these indexes alone (no table lookups).

CREATE INDEX installed_software_title ON installed_software (name, publisher, version, device_id);
DROP INDEX usage_sessions_end;
CREATE INDEX usage_sessions_application ON usage_sessions (application_id, end_time, start_time, device_id, user_id);
