-- Schema 21 takes PostgreSQL's TimeSerial from a sequence (migration 21 started it from the
-- counter, then 0): it stands where the counter does.
SELECT setval('usage_time_serial', 41, true);
