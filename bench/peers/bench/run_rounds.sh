#!/usr/bin/env bash
# Interleaved rounds: for each round, each server in turn (peer, us, peer, us, ...).
#   bash bench/run_rounds.sh "r1 r2 r3" "askbot us us-member spirit"
# us-member: this project with a signed-in visitor's cookie on every endpoint (PEERS_HOME/us-run/
# member_cookie from us/make_session.py), so the anonymous page cache plays no part. wrk without
# a cookie is a logged-out visitor for every system; Spirit's search needs a login, so Spirit's
# search runs signed in (sessionid from spirit/make_session.py).
# The servers must be running (askbot/run_server.sh, us/run_server.sh, ...); question paths
# must exist (PEERS_HOME/<name>/question_paths.txt, from each gen_paths.py).
# Then: python3 bench/summarize.py r1 r2 r3
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
rounds=${1:-r1 r2 r3}
servers=${2:-askbot us}
# The web processes of `community serve --workers N` (or uvicorn's): the children of the
# supervisor, without multiprocessing's resource tracker.
us_pids() {
  for p in $(pgrep -P "$(cat "$PEERS_HOME/us-run/web.pid")"); do
    grep -q resource_tracker "/proc/$p/cmdline" 2>/dev/null || printf '%s ' "$p"
  done
}
for r in $rounds; do
  for s in $servers; do
    case $s in
      askbot) CPU_PIDS=$(pgrep -P "$(cat "$PEERS_HOME/askbot/gunicorn.pid")" | tr '\n' ' ') bash "$here/bench.sh" askbot "$r" "http://127.0.0.1:$ASKBOT_PORT" \
                "$PEERS_HOME/askbot/question_paths.txt" /questions/ /questions/query:python/ ;;
      spirit) CPU_PIDS=$(pgrep -P "$(cat "$PEERS_HOME/spirit/gunicorn.pid")" | tr '\n' ' ') bash "$here/bench.sh" spirit "$r" "http://127.0.0.1:$SPIRIT_PORT" \
                "$PEERS_HOME/spirit/question_paths.txt" / "/search/?q=python" \
                "sessionid=$(cat "$PEERS_HOME/spirit/sessionid")" ;;
      us)     CPU_PIDS=$(us_pids) bash "$here/bench.sh" us "$r" "http://127.0.0.1:$US_PORT" \
                "$PEERS_HOME/us-run/question_paths.txt" /b/acme/qa "/b/acme/search?q=python&scope=community" ;;
      us-member) CPU_PIDS=$(us_pids) COOKIE_ALL=1 bash "$here/bench.sh" us-member "$r" "http://127.0.0.1:$US_PORT" \
                "$PEERS_HOME/us-run/question_paths.txt" /b/acme/qa "/b/acme/search?q=python&scope=community" \
                "$(cat "$PEERS_HOME/us-run/member_cookie")" ;;
    esac
  done
done
