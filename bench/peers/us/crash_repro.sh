#!/usr/bin/env bash
# The web-process segfault of the peers' rounds (issue 14, docs/performance.md, "The third run"):
# Python 3.11's cycle collector running inside request threads. One uvicorn process on the peers'
# data (us/setup.sh), signed-in thread pages at wrk -c8 in 10 s runs until the process dies or
# SECONDS pass. Since community/core/gc_control.py it runs clean: a death is a regression.
#   bash us/crash_repro.sh [h11|httptools] [SECONDS]      (defaults: h11 60)
# Set PSYCOPG_IMPL=python to take psycopg's C implementation out, SEARCH_MODEL
# to change the search model, PAGE_CACHE_SECONDS=0 to render every page, REPRO_COOKIE="" for a
# logged-out visitor (default: the signed-in member_cookie), REPRO_PATHS=FILE for other thread
# paths, REPRO_NO_REDIS=1 to run without Redis. Prints each run's req/s and socket errors, then how many fatal
# errors the server's log holds (its stacks: /tmp/crash_<http>.log, PYTHONFAULTHANDLER is on).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
http=${1:-h11} seconds=${2:-60} port=$((US_PORT + 11))
cd "$PEERS_HOME/us"
set -a; . "$PEERS_HOME/us-run/env.sh"; set +a
if [ -n "${REPRO_NO_REDIS:-}" ]; then unset REDIS_URL; fi
bash "$here/run_meili.sh" > /dev/null
export PYTHONFAULTHANDLER=1
log=/tmp/crash_$http.log
.venv/bin/uvicorn --factory community.app:create_app --host 127.0.0.1 --port "$port" --http "$http" \
  --loop asyncio --no-access-log --log-level warning --workers 1 > "$log" 2>&1 &
pid=$!
for _ in $(seq 60); do curl -sf -o /dev/null "http://127.0.0.1:$port/b/acme/qa" && break; sleep 0.5; done
cookie=${REPRO_COOKIE-$(cat "$PEERS_HOME/us-run/member_cookie")}
for round in $(seq 1 $((seconds / 10))); do
  wrk -t2 -c8 -d10s -s "$here/../bench/rotate.lua" "http://127.0.0.1:$port" -- \
    "${REPRO_PATHS:-$PEERS_HOME/us-run/question_paths.txt}" "$cookie" | grep -E "Requests/sec|Socket errors|Non-2xx" || true
  if ! kill -0 "$pid" 2>/dev/null; then echo "the server died during run $round"; break; fi
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
echo "fatal errors in $log: $(grep -c Fatal "$log" || true)"
