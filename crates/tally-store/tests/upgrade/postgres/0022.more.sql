-- Since schema 21 PostgreSQL's TimeSerial comes from a sequence (migration 21 started it from
-- the counter, then 0): it stands where the counter does.
SELECT setval('usage_time_serial', 41, true);
