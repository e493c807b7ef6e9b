-- A generation per device for its inventory (issue 19): the up-sync compared each device's
-- whole snapshot with the one last sent, reading every device's inventory every cycle (three
-- queries per device per minute at a child). Now the database bumps the device's generation on
-- every write to its installed software, executables or local accounts, whoever writes it
-- (inventory, import, merge, metering), and the sync reads an inventory only when the device's
-- row or this generation changed. The positions' triggers on devices name their columns, so
-- this one leaves kept positions alone.
ALTER TABLE devices ADD COLUMN inventory_generation BIGINT NOT NULL DEFAULT 0;
-- The transaction that last bumped it: a device is bumped once per transaction, however many
-- statements write its inventory (an import's chunks name each device many times; updating the
-- device row each time doubled the import's time).
ALTER TABLE devices ADD COLUMN inventory_generation_xact BIGINT;
-- Once per statement, for the devices its rows name (transition tables), and only those not
-- bumped yet in this transaction.
CREATE FUNCTION bump_inventory_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE devices SET inventory_generation = inventory_generation + 1,
                           inventory_generation_xact = txid_current()
        WHERE id IN (SELECT device_id FROM new_rows)
          AND inventory_generation_xact IS DISTINCT FROM txid_current();
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE devices SET inventory_generation = inventory_generation + 1,
                           inventory_generation_xact = txid_current()
        WHERE id IN (SELECT device_id FROM old_rows)
          AND inventory_generation_xact IS DISTINCT FROM txid_current();
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER installed_software_insert_inventory AFTER INSERT ON installed_software
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER installed_software_update_inventory AFTER UPDATE ON installed_software
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER installed_software_delete_inventory AFTER DELETE ON installed_software
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER software_executables_insert_inventory AFTER INSERT ON software_executables
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER software_executables_update_inventory AFTER UPDATE ON software_executables
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER software_executables_delete_inventory AFTER DELETE ON software_executables
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER local_accounts_insert_inventory AFTER INSERT ON local_accounts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER local_accounts_update_inventory AFTER UPDATE ON local_accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
CREATE TRIGGER local_accounts_delete_inventory AFTER DELETE ON local_accounts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inventory_generation();
