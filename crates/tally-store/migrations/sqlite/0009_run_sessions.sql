-- Usage sessions derived from the agent's runs (the record_usage_sessions task) carry the run's
-- MeterDataID, so a run reported over several cycles stays one session that grows. Imported
-- sessions have none and stay out of the index, which keeps large imports from paying for it.

ALTER TABLE usage_sessions ADD COLUMN meter_data_id TEXT;
CREATE UNIQUE INDEX usage_sessions_run ON usage_sessions (application_id, meter_data_id)
    WHERE meter_data_id IS NOT NULL;
