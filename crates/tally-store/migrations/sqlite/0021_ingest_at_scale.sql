-- PostgreSQL's migration 21 also moves TimeSerial to a sequence. SQLite has one writer at a
-- time, so the counters row it keeps costs nothing.
-- Records waiting in each agent's spool as its last heartbeat said: /metrics sums them.
ALTER TABLE agents ADD COLUMN spooled_records INTEGER NOT NULL DEFAULT 0;
