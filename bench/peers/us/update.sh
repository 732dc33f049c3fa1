#!/usr/bin/env bash
# Moves an existing set-up (us/setup.sh) to another checkout without importing again: the clone
# follows REPO's HEAD, `make setup` installs what changed, `community migrate` brings perf_us to
# the new schema, and a fresh signed-in cookie is made. Restart the server afterwards.
#   bash us/update.sh [REPO]      (default: the git top level of the current folder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
repo=${1:-$(git rev-parse --show-toplevel)}
run=$PEERS_HOME/us-run
git -C "$PEERS_HOME/us" fetch -q "$repo" HEAD
git -C "$PEERS_HOME/us" checkout -q --detach FETCH_HEAD
git -C "$PEERS_HOME/us" log -1 --format='measuring %h %s' | tee "$run/commit.txt"
(cd "$PEERS_HOME/us" && make setup)
. "$run/env.sh"
cd "$PEERS_HOME/us"
.venv/bin/community migrate
.venv/bin/python "$here/make_session.py" > "$run/member_cookie"
