-- TimeSerial from a sequence instead of the counters row: each usage write took the row's lock
-- until it committed, so concurrent uploads (from every replica) wrote one at a time. The
-- sequence carries on from the counter's value; the counters row stays as it was, unused.
-- Readers learn which serials have settled through an advisory lock (see postgres/mod.rs).
CREATE SEQUENCE usage_time_serial AS BIGINT MINVALUE 0 START WITH 0;
SELECT setval('usage_time_serial', (SELECT value FROM counters WHERE name = 'time_serial'), true);
-- Records waiting in each agent's spool as its last heartbeat said: /metrics sums them.
ALTER TABLE agents ADD COLUMN spooled_records BIGINT NOT NULL DEFAULT 0;
