#!/usr/bin/env bash
# Times the web console's main pages and the JSON API calls behind them against a real
# `tally server` on a stored estate (the one `tally bench compliance` generates), measured by
# curl over loopback: each URL once right after the server starts (the first page computes the
# license position) and then RUNS more times (the server keeps the position while the data does
# not change). Prints one line per URL: first time, then the median of the later runs, and size.
#
#   crates/tally/benches/console_pages.sh TALLY_BINARY SQLITE_FILE [APP] [RUNS] [AS_OF]
#
# AS_OF (YYYY-MM-DD), when given, is the day the concurrency chart is timed for (per day and
# per month), e.g. the last day of the bench estate's sessions.
set -euo pipefail

tally="$1"
db="$2"
app="${3:-app75}"
runs="${4:-5}"
as_of="${5:-}"
port=18089
url="http://127.0.0.1:$port"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# An admin token of the bench's own, written straight into the bench database (operator tokens
# are stored as the SHA-256 of the secret; a position does not read them).
token="tally_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
sqlite3 "$db" "INSERT INTO operator_tokens (name, role, token_hash, created_at)
  VALUES ('console-bench-$$', 'admin', '$hash', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))"

"$tally" server --database-url "sqlite://$db" --listen "127.0.0.1:$port" \
  --data-dir "$work" --operator-requests-per-minute 0 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.5; done

jar="$work/cookies"
csrf="$(curl -fs -c "$jar" "$url/sign-in" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)"
curl -fs -b "$jar" -c "$jar" -o /dev/null --data-urlencode "token=$token" \
  --data-urlencode "csrf=$csrf" "$url/sign-in"

time_of() { # URL [auth header] -> "seconds bytes"
  if [ "${2:-}" = api ]; then
    curl -fs -o /dev/null -w '%{time_total} %{size_download}' -H "Authorization: Bearer $token" "$1"
  else
    curl -fs -o /dev/null -w '%{time_total} %{size_download}' -b "$jar" "$1"
  fi
}

measure() { # LABEL URL [api]
  local first later=() t size
  first="$(time_of "$2" "${3:-}")"
  for _ in $(seq 1 "$runs"); do
    read -r t size <<<"$(time_of "$2" "${3:-}")"
    later+=("$t")
  done
  median="$(printf '%s\n' "${later[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")"
  printf '%-34s first %7.3f s   then median %7.3f s   %8.1f kB\n' \
    "$1" "${first% *}" "$median" "$(echo "${first#* } / 1000" | bc -l)"
}

measure "page /" "$url/"
measure "page /applications" "$url/applications"
measure "page /applications/$app" "$url/applications/$app"
if [ -n "$as_of" ]; then
  measure "page /applications/$app/concurrency?as_of=$as_of" "$url/applications/$app/concurrency?as_of=$as_of"
  measure "  ... &per=month" "$url/applications/$app/concurrency?as_of=$as_of&per=month"
  measure "api /api/v1/compliance?as_of=$as_of" "$url/api/v1/compliance?app=$app&as_of=$as_of" api
else
  measure "page /applications/$app/concurrency" "$url/applications/$app/concurrency"
fi
measure "page /licenses" "$url/licenses"
measure "page /reclaim" "$url/reclaim"
measure "page /devices" "$url/devices"
measure "page /devices/1" "$url/devices/1"
measure "page /users" "$url/users"
measure "page /programs" "$url/programs"
measure "page /rules" "$url/rules"
measure "page /org" "$url/org"
measure "page /admin/tokens" "$url/admin/tokens"
measure "page /admin/agents" "$url/admin/agents"
measure "page /admin/audit" "$url/admin/audit"
measure "api /api/v1/compliance" "$url/api/v1/compliance" api
measure "api /api/v1/compliance/detail" "$url/api/v1/compliance/detail?app=$app" api
measure "api /api/v1/licenses" "$url/api/v1/licenses" api
measure "api /api/v1/reclaim" "$url/api/v1/reclaim" api
