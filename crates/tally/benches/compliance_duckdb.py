#!/usr/bin/env python3
"""The required quantity of every application, computed by DuckDB from the same SQLite file
`tally bench compliance` computed it from, and compared with Tally's figures.

    ./target/release/tally bench compliance --database-url sqlite:///tmp/cbench/estate.db \
        --required-out /tmp/cbench/tally-required.csv
    pip install duckdb
    python3 crates/tally/benches/compliance_duckdb.py /tmp/cbench/estate.db \
        /tmp/cbench/tally-required.csv

DuckDB's SQLite scanner is an extension downloaded at run time; where that is not possible
the tables are first dumped to CSV with the `sqlite3` command-line tool (timed separately)
and DuckDB reads those. The rules are docs/compliance.md's, for what the generated estate
holds: relevant devices are active or in repair, users count when active and not service
accounts, recognition patterns use `*` and `?` in any case (an empty publisher or version
pattern accepts any), installed means installed at the end of the as-of day, sessions count
when they end on or after the period's start and start before its end, and the concurrent
metrics take the most distinct users (devices) in one clock hour of the period. Statuses are
today's (the generated estate has no status history).
"""

import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone

import duckdb

AS_OF = date(2026, 3, 31)

TABLES = {
    "devices": "SELECT id, status, sockets, cores, pvu_per_core FROM devices",
    "users": "SELECT id, status, service_account FROM users",
    "applications": "SELECT id, name, metric, period_days FROM applications",
    "recognition": "SELECT application_id, software, publisher, version FROM recognition_rules",
    "installed": "SELECT device_id, name, publisher, version, installed_at, removed_at "
    "FROM installed_software",
    "sessions": "SELECT application_id, device_id, user_id, start_time, end_time "
    "FROM usage_sessions",
}


def micros(d: datetime) -> int:
    return int(d.timestamp() * 1_000_000)


def dump(db: str, out: str) -> None:
    for table, query in TABLES.items():
        with open(os.path.join(out, f"{table}.csv"), "w") as f:
            subprocess.run(["sqlite3", "-csv", "-header", db, query], stdout=f, check=True)


# Times are stored as RFC 3339 text; the computation works in microseconds since 1970.
TIMES = {"installed": ("installed_at", "removed_at"), "sessions": ("start_time", "end_time")}


def load(con, out: str) -> None:
    for table in TABLES:
        path = os.path.join(out, f"{table}.csv")
        times = TIMES.get(table, ())
        columns = ", ".join(
            f"epoch_us(CAST(nullif(CAST({c} AS VARCHAR), '') AS TIMESTAMPTZ)) AS {c}" for c in times
        )
        select = f"* EXCLUDE ({', '.join(times)}), {columns}" if times else "*"
        # Names, publishers and versions stay text ("1.0" is not a number here).
        text = ", all_varchar=true" if table in ("installed", "recognition") else ""
        con.execute(
            f"CREATE TABLE {table} AS SELECT {select} FROM read_csv('{path}', header=true{text})"
        )
    con.execute("UPDATE installed SET name = coalesce(name, ''), publisher = coalesce(publisher, ''), version = coalesce(version, '')")


SQL = """
WITH
periods AS (
    SELECT id, name, metric,
           CASE WHEN period_days IS NULL THEN $month_start
                ELSE $day_end - period_days * 86400000000 END AS p_from,
           $day_end AS p_to
    FROM applications
),
relevant_devices AS (
    SELECT id, greatest(coalesce(sockets, 1), 1) AS sockets,
           greatest(coalesce(cores, 1), 1) AS cores, pvu_per_core
    FROM devices WHERE status IN ('active', 'in_repair')
),
people AS (
    SELECT id FROM users WHERE status = 'active' AND NOT CAST(service_account AS BOOLEAN)
),
patterns AS (
    SELECT CAST(application_id AS BIGINT) AS application_id,
           replace(replace(replace(replace(lower(software), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_') AS sw,
           replace(replace(replace(replace(lower(coalesce(publisher, '')), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_') AS pub,
           replace(replace(replace(replace(lower(coalesce(version, '')), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_') AS ver
    FROM recognition WHERE coalesce(software, '') <> ''
),
titles AS (
    SELECT DISTINCT name, publisher, version FROM installed
    WHERE (installed_at IS NULL OR installed_at < $day_end)
      AND (removed_at IS NULL OR removed_at >= $day_end)
),
app_titles AS (
    SELECT DISTINCT p.application_id, t.name, t.publisher, t.version
    FROM patterns p JOIN titles t
      ON lower(t.name) LIKE p.sw ESCAPE '\\'
     AND (p.pub = '' OR lower(t.publisher) LIKE p.pub ESCAPE '\\')
     AND (p.ver = '' OR lower(t.version) LIKE p.ver ESCAPE '\\')
),
app_devices AS (
    SELECT DISTINCT a.application_id, CAST(i.device_id AS BIGINT) AS device_id
    FROM app_titles a JOIN installed i USING (name, publisher, version)
    WHERE (i.installed_at IS NULL OR i.installed_at < $day_end)
      AND (i.removed_at IS NULL OR i.removed_at >= $day_end)
),
installed_demand AS (
    SELECT ad.application_id,
           count(*) AS installations,
           sum(d.sockets) AS processors,
           sum(d.cores) AS processor_cores,
           sum(d.pvu_per_core * d.cores) AS pvu
    FROM app_devices ad JOIN relevant_devices d ON d.id = ad.device_id
    GROUP BY ad.application_id
),
in_period AS (
    SELECT s.*, p.metric, greatest(s.start_time, p.p_from) AS s_from,
           least(s.end_time, p.p_to) AS s_to
    FROM sessions s JOIN periods p ON p.id = s.application_id
    WHERE p.metric IN ('users', 'devices', 'concurrent_users', 'concurrent_devices')
      AND s.end_time >= p.p_from AND s.start_time < p.p_to
),
distinct_use AS (
    SELECT application_id,
           count(DISTINCT user_id) FILTER (WHERE user_id IN (SELECT id FROM people)) AS users,
           count(DISTINCT device_id) FILTER (WHERE device_id IN (SELECT id FROM relevant_devices)) AS devices
    FROM in_period GROUP BY application_id
),
hours AS (
    SELECT application_id, metric, user_id, device_id,
           unnest(range(s_from // 3600000000,
                        (CASE WHEN s_to > s_from THEN s_to - 1 ELSE s_to END) // 3600000000 + 1)) AS hour
    FROM in_period
    WHERE metric IN ('concurrent_users', 'concurrent_devices')
      AND (s_from < s_to OR (start_time = end_time))
),
hourly AS (
    SELECT application_id, hour,
           count(DISTINCT user_id) FILTER (WHERE user_id IN (SELECT id FROM people)) AS users,
           count(DISTINCT device_id) FILTER (WHERE device_id IN (SELECT id FROM relevant_devices)) AS devices
    FROM hours GROUP BY application_id, hour
),
peaks AS (
    SELECT application_id, max(users) AS concurrent_users, max(devices) AS concurrent_devices
    FROM hourly GROUP BY application_id
)
SELECT p.name, p.metric,
       coalesce(CASE p.metric
           WHEN 'installations' THEN i.installations
           WHEN 'processors' THEN i.processors
           WHEN 'processor_cores' THEN i.processor_cores
           WHEN 'pvu' THEN i.pvu
           WHEN 'users' THEN u.users
           WHEN 'devices' THEN u.devices
           WHEN 'concurrent_users' THEN k.concurrent_users
           WHEN 'concurrent_devices' THEN k.concurrent_devices
       END, 0) AS required
FROM periods p
LEFT JOIN installed_demand i ON i.application_id = p.id
LEFT JOIN distinct_use u ON u.application_id = p.id
LEFT JOIN peaks k ON k.application_id = p.id
WHERE p.metric NOT IN ('custom_compare_values', 'cal', 'no_license_required')
ORDER BY p.name
"""


def main() -> int:
    db, tally_csv = sys.argv[1], sys.argv[2]
    day_end = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=timezone.utc) + timedelta(days=1)
    month_start = datetime(AS_OF.year, AS_OF.month, 1, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        dump(db, out)
        dumped = time.perf_counter() - started
        con = duckdb.connect()
        started = time.perf_counter()
        load(con, out)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        rows = con.execute(
            SQL, {"day_end": micros(day_end), "month_start": micros(month_start)}
        ).fetchall()
        computed = time.perf_counter() - started
    ours = {name: (metric, int(required)) for name, metric, required in rows}
    with open(tally_csv) as f:
        theirs = {r["application"]: (r["metric"], int(r["required"])) for r in csv.DictReader(f)}
    compared = [name for name in ours if name in theirs]
    differ = [n for n in compared if ours[n] != theirs[n]]
    print(f"duckdb {duckdb.__version__}: sqlite3 dump {dumped:.1f} s, load {loaded:.1f} s, "
          f"required quantities {computed:.2f} s for {len(rows)} applications")
    print(f"compared {len(compared)} applications with Tally's: {len(differ)} differ")
    for n in differ[:10]:
        print(f"  {n}: duckdb {ours[n]}, tally {theirs[n]}")
    return 1 if differ or not compared else 0


if __name__ == "__main__":
    sys.exit(main())
