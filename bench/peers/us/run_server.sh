#!/usr/bin/env bash
# The app as deployed in production: `community serve --workers 2` (2 uvicorn processes with
# SO_REUSEPORT, httptools + uvloop, no embedded worker; like the peers' 2 gunicorn workers) on
# 127.0.0.1:$US_PORT, plus one `community worker` beside it.
# Pids in PEERS_HOME/us-run/{web,worker}.pid. WEB_WORKERS overrides the 2.
# A checkout whose `community serve` has no --workers yet falls back to
# `uvicorn --factory --workers` (one shared socket: the kernel may hand every kept-alive
# connection to one process; see cpu.txt per round), and says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
run=$PEERS_HOME/us-run
bash "$here/run_meili.sh"
. "$run/env.sh"
cd "$PEERS_HOME/us"
# A crash of a web process (seen twice: a segfault in libpython) leaves every thread's Python stack in web.log.
export PYTHONFAULTHANDLER=1
# The help text is read whole first: `| grep -q` would stop reading at the match, the command
# would die of SIGPIPE, and pipefail would call the pipeline failed.
help_text=$(.venv/bin/community serve --help 2>&1 || true)
if [[ $help_text == *--workers* ]]; then
  nohup .venv/bin/community serve --workers "${WEB_WORKERS:-2}" --host 127.0.0.1 --port "$US_PORT" \
    > "$run/web.log" 2>&1 &
else
  echo "NOTE: this checkout's community serve has no --workers: uvicorn --factory --workers" | tee "$run/server-note.txt"
  nohup .venv/bin/uvicorn --factory community.app:create_app --host 127.0.0.1 --port "$US_PORT" \
    --workers "${WEB_WORKERS:-2}" --no-access-log --log-level warning --no-server-header \
    > "$run/web.log" 2>&1 &
fi
echo $! > "$run/web.pid"
nohup .venv/bin/community worker > "$run/worker.log" 2>&1 &
echo $! > "$run/worker.pid"
for i in $(seq 60); do curl -sf -o /dev/null "http://127.0.0.1:$US_PORT/b/acme/qa" && break; sleep 1; done
echo "us on http://127.0.0.1:$US_PORT (web pid $(cat "$run/web.pid"), worker pid $(cat "$run/worker.pid"))"
