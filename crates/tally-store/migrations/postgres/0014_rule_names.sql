-- Rule names are unique per site, any case (issue 16): `tally rules disable Snoozer` must name
-- one rule. Existing duplicates keep the oldest rule's name; each later one becomes
-- "NAME (2)", "NAME (3)", … in id order, or "NAME (rule ID)" should that name be taken too.
CREATE TEMPORARY TABLE rule_renames AS
    SELECT r.id, r.name || ' (' || CAST(
               (SELECT COUNT(*) FROM metering_rules o
                WHERE o.site_code = r.site_code AND LOWER(o.name) = LOWER(r.name)
                  AND o.id < r.id) + 1 AS TEXT) || ')' AS new_name,
           r.name || ' (rule ' || CAST(r.id AS TEXT) || ')' AS fallback
    FROM metering_rules r
    WHERE EXISTS (SELECT 1 FROM metering_rules o
                  WHERE o.site_code = r.site_code AND LOWER(o.name) = LOWER(r.name)
                    AND o.id < r.id);
UPDATE rule_renames SET new_name = fallback
    WHERE EXISTS (SELECT 1 FROM metering_rules m WHERE LOWER(m.name) = LOWER(rule_renames.new_name));
UPDATE metering_rules
    SET name = (SELECT new_name FROM rule_renames WHERE rule_renames.id = metering_rules.id)
    WHERE id IN (SELECT id FROM rule_renames);
DROP TABLE rule_renames;
CREATE UNIQUE INDEX metering_rules_name ON metering_rules (site_code, LOWER(name));
