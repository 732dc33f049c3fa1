#!/usr/bin/env bash
# Stops the web server and the worker (and Meilisearch with --all), by their pid files only.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
run=$PEERS_HOME/us-run
files="web worker"; [ "${1:-}" = --all ] && files="web worker meili"
for f in $files; do
  if [ -f "$run/$f.pid" ]; then
    pid=$(cat "$run/$f.pid")
    kill "$pid" 2>/dev/null && echo "stopped $f (pid $pid)"
    for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done  # its children exit first
  fi
  rm -f "$run/$f.pid"
done
