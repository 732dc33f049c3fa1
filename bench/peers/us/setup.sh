#!/usr/bin/env bash
# This project (the FastAPI community) on PostgreSQL + an external Meilisearch, loaded with the
# shared data set through its Stack Exchange importer.
#   bash us/setup.sh [REPO]      REPO: the project's git checkout
#                                 (default: the git top level of the current folder)
# Makes PEERS_HOME/us (a clone + `make setup`), PEERS_HOME/data/se (the dump),
# PEERS_HOME/us-run/{env.sh,meili/,instance/} and the database perf_us (dropped and recreated).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
repo=${1:-$(git rev-parse --show-toplevel)}
run=$PEERS_HOME/us-run
mkdir -p "$run/meili" "$PEERS_HOME/data"
if [ ! -d "$PEERS_HOME/us/.git" ]; then git clone -q "$repo" "$PEERS_HOME/us"
else git -C "$PEERS_HOME/us" fetch -q "$repo" HEAD && git -C "$PEERS_HOME/us" checkout -q --detach FETCH_HEAD; fi
git -C "$PEERS_HOME/us" log -1 --format='measuring %h %s' | tee "$run/commit.txt"
(cd "$PEERS_HOME/us" && make setup)
$PY "$here/../common/datagen.py" --users "$USERS" --questions "$QUESTIONS" --se-dir "$PEERS_HOME/data/se"
cat > "$run/env.sh" <<ENV
export DATABASE_URL=postgresql://$PG_USER@$PG_HOST:$PG_PORT/perf_us
export MEILI_URL=http://127.0.0.1:$MEILI_PORT
export MEILI_MASTER_KEY=perf-us-master-key-0123456789
export MEILI_INDEX_PREFIX=perfus_
export INSTANCE_DIR=$run/instance
export EMBEDDED_WORKER=false
export RATE_LIMITS_ENABLED=false
export LOG_LEVEL=WARNING
export BASE_URL=http://127.0.0.1:$US_PORT
# Two web processes share the anonymous page cache and counters through Redis, as deployed.
export REDIS_URL=${US_REDIS_URL:-redis://127.0.0.1:6379/12}
export RATE_LIMIT_PREFIX=perfus
ENV
psql_ -c "DROP DATABASE IF EXISTS perf_us" -c "CREATE DATABASE perf_us"
bash "$here/run_meili.sh"
. "$run/env.sh"
cd "$PEERS_HOME/us"
.venv/bin/community migrate
t0=$(date +%s.%N)
.venv/bin/community import stackexchange "$PEERS_HOME/data/se" --brand acme --forum qa --site datagen \
  2>&1 | tee "$run/import.log"
t1=$(date +%s.%N)
echo "import + indexing wall time: $(echo "$t1 - $t0" | bc) s" | tee -a "$run/import.log"
psql_ -d perf_us -c "VACUUM ANALYZE"
$PY "$here/gen_paths.py" "$run/question_paths.txt"
.venv/bin/python "$here/make_session.py" > "$run/member_cookie"   # the signed-in variant
