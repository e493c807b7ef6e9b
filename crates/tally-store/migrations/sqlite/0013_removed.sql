-- Removing a license or an application keeps its row, marked with when it was removed, so a
-- position on an earlier day still counts what existed then, and an application's snapshots,
-- sessions and recognition rules stay for its trend. Current lists show the rows with no
-- removed_at; adding an application of a removed one's name brings it back.
ALTER TABLE licenses ADD COLUMN removed_at TEXT;
ALTER TABLE applications ADD COLUMN removed_at TEXT;
