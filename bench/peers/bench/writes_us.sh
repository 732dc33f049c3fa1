#!/usr/bin/env bash
# This project only (server running, worker stopped or not): the two writes of issue 14 on the
# peers' data, signed in as the benchmark member (us-run/member_cookie): a vote (htmx, on posts
# the member has not voted on, 1 then 0 the next time round) and a new answer (open threads),
# each after a 5 s warm-up, 20 s at c=8, then 15 s at c=64 and c=200 (no 5xx expected: queued
# or 503 with Retry-After). bench/wrk/scenario.lua prints a BENCH_JSON line per run.
#   bash bench/writes_us.sh ROUND        -> results/ROUND/us-writes/{vote,answer}_cN.wrk
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
. "$PEERS_HOME/us-run/env.sh"
out=${RESULTS:-$here/../results}/${1:-w1}/us-writes
mkdir -p "$out"
scenario=$here/../../wrk/scenario.lua
base=http://127.0.0.1:$US_PORT
cookie=$(cat "$PEERS_HOME/us-run/member_cookie")
db=${DATABASE_URL##*/}
member=$(psql_ "$db" -Atc "SELECT author_id FROM posts GROUP BY author_id ORDER BY count(*) DESC LIMIT 1")
psql_ "$db" -Atc "SELECT p.id FROM posts p WHERE p.author_id <> $member AND p.visibility = 'visible'
  AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.post_id = p.id AND v.user_id = $member)
  ORDER BY md5(p.id::text) LIMIT 3000" > "$out/vote_posts.txt"
psql_ "$db" -Atc "SELECT t.id FROM threads t WHERE t.visibility = 'visible' AND t.locked_at IS NULL
  ORDER BY md5(t.id::text) LIMIT 3000" > "$out/answer_threads.txt"
token=$(curl -s -H "Cookie: $cookie" "$base/b/acme/qa" | grep -o 'name="csrf-token" content="[0-9a-f]*"' \
  | head -1 | sed 's/.*content="//;s/"//')
[ -n "$token" ] || { echo "no CSRF token: is the member cookie still valid?" >&2; exit 1; }
for mode in vote answer; do
  file=$out/vote_posts.txt; [ "$mode" = answer ] && file=$out/answer_threads.txt
  wrk -t2 -c8 -d5s -s "$scenario" "$base" -- "$mode" "$file" "$cookie" "$token" > /dev/null
  for run in c8:20s c64:15s c200:15s; do
    c=${run%%:*}; d=${run#*:}
    echo "$mode $c $(date -u +%H:%M:%S) $(uptime)" >> "$out/uptime.txt"
    wrk -t2 -c"${c#c}" -d"$d" --latency --timeout 10s -s "$scenario" "$base" -- "$mode" "$file" "$cookie" "$token" \
      > "$out/${mode}_$c.wrk"
    echo "$mode $c: $(awk '/Requests\/sec/{print $2}' "$out/${mode}_$c.wrk") req/s, $(grep -o '"p99_us":[0-9]*' "$out/${mode}_$c.wrk") $(grep -o '"s5xx":[0-9]*' "$out/${mode}_$c.wrk")"
  done
done
