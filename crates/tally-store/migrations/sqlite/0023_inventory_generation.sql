-- A generation per device for its inventory (issue 19): the up-sync compared each device's
-- whole snapshot with the one last sent, reading every device's inventory every cycle (three
-- queries per device per minute at a child). Now the database bumps the device's generation on
-- every write to its installed software, executables or local accounts, whoever writes it
-- (inventory, import, merge, metering), and the sync reads an inventory only when the device's
-- row or this generation changed. The positions' triggers on devices name their columns, so
-- this one leaves kept positions alone.
ALTER TABLE devices ADD COLUMN inventory_generation INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER installed_software_insert_inventory AFTER INSERT ON installed_software
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id = NEW.device_id; END;
CREATE TRIGGER installed_software_update_inventory AFTER UPDATE ON installed_software
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1
      WHERE id IN (OLD.device_id, NEW.device_id); END;
CREATE TRIGGER installed_software_delete_inventory AFTER DELETE ON installed_software
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id = OLD.device_id; END;
CREATE TRIGGER software_executables_insert_inventory AFTER INSERT ON software_executables
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id = NEW.device_id; END;
CREATE TRIGGER software_executables_update_inventory AFTER UPDATE ON software_executables
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1
      WHERE id IN (OLD.device_id, NEW.device_id); END;
CREATE TRIGGER software_executables_delete_inventory AFTER DELETE ON software_executables
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id = OLD.device_id; END;
CREATE TRIGGER local_accounts_insert_inventory AFTER INSERT ON local_accounts
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id = NEW.device_id; END;
CREATE TRIGGER local_accounts_update_inventory AFTER UPDATE ON local_accounts
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1
      WHERE id IN (OLD.device_id, NEW.device_id); END;
CREATE TRIGGER local_accounts_delete_inventory AFTER DELETE ON local_accounts
BEGIN UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id = OLD.device_id; END;
