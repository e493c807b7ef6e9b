-- Usage summaries (seed 000: "summarized on a specified schedule") and the maintenance tasks
-- that make and age them.

-- Per rule and UTC clock hour; recomputed whole from the raw records when any of them changes.
CREATE TABLE file_usage_hourly (
    rule_id                BIGINT NOT NULL REFERENCES metering_rules (id) ON DELETE CASCADE,
    hour                   TIMESTAMPTZ NOT NULL,
    distinct_users         BIGINT NOT NULL,
    distinct_devices       BIGINT NOT NULL,
    distinct_ts_users      BIGINT NOT NULL,
    usage_ms               BIGINT NOT NULL,
    peak_concurrent_runs   BIGINT NOT NULL,
    peak_concurrent_users  BIGINT NOT NULL,
    PRIMARY KEY (rule_id, hour)
);
CREATE INDEX file_usage_hourly_hour ON file_usage_hourly (hour);

-- Per rule, device, user and month of the client's calendar (yyyymm); records are added once.
CREATE TABLE monthly_usage (
    rule_id    BIGINT NOT NULL REFERENCES metering_rules (id) ON DELETE CASCADE,
    device_id  BIGINT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month      INTEGER NOT NULL,
    runs       BIGINT NOT NULL,
    usage_ms   BIGINT NOT NULL,
    last_used  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rule_id, device_id, user_id, month)
);
CREATE INDEX monthly_usage_month ON monthly_usage (month);

CREATE TABLE maintenance_tasks (
    name              TEXT PRIMARY KEY,
    enabled           BOOLEAN NOT NULL,
    every_secs        BIGINT NOT NULL,
    age_days          INTEGER,
    last_run_at       TIMESTAMPTZ,
    last_duration_ms  BIGINT,
    last_rows         BIGINT,
    watermark         BIGINT NOT NULL DEFAULT 0,
    last_error        TEXT
);

-- The longest period of any stored record: records overlapping a time window end no later than
-- the window's end plus this, which bounds the end-time index scan for summaries. Existing
-- records are measured once here.
INSERT INTO counters (name, value) VALUES ('longest_period_ms', 0);
UPDATE counters SET value = COALESCE((SELECT MAX(CAST(EXTRACT(EPOCH FROM end_time - start_time) * 1000 AS BIGINT)) FROM usage_records), 0)
WHERE name = 'longest_period_ms';

-- Summarisers read new records in (time_serial, id) order, a page at a time.
CREATE INDEX usage_records_serial_id ON usage_records (time_serial, id);
