-- Rules placing devices (by site and host-name pattern) and users (by account pattern) on
-- org nodes, for those not placed by hand or import; the oldest matching rule wins.

CREATE TABLE org_rules (
    id         INTEGER PRIMARY KEY,
    org_node   INTEGER NOT NULL REFERENCES org_nodes (id) ON DELETE CASCADE,
    site       TEXT,
    host_name  TEXT,
    account    TEXT
);
