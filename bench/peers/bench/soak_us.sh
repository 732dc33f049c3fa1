#!/usr/bin/env bash
# This project only (`community serve --workers 2` running, us/run_server.sh): memory over a
# soak of signed-in traffic. It asks MINUTES (default 10) minutes of the benchmark member's
# pages at c=8, alternating 20 s of thread pages and 20 s of searches for varied queries (words
# of the thread titles, so the semantic search embeds new queries throughout), after posting
# ASKS (default 20) new questions in English and Spanish (the language detector's path).
# Every 30 s it writes the RSS of the supervisor's children (web processes, model server) to
# rss.txt; at the end each process's peak (VmHWM).
#   bash bench/soak_us.sh ROUND        -> results/ROUND/us-soak/{rss.txt,peaks.txt,*.wrk}
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../common/env.sh"
. "$PEERS_HOME/us-run/env.sh"
out=${RESULTS:-$here/../results}/${1:-s1}/us-soak
mkdir -p "$out"
base=http://127.0.0.1:$US_PORT
cookie=$(cat "$PEERS_HOME/us-run/member_cookie")
supervisor=$(cat "$PEERS_HOME/us-run/web.pid")
minutes=${MINUTES:-10}
db=${DATABASE_URL##*/}
psql_ "$db" -Atc "SELECT DISTINCT lower(w) FROM threads, regexp_split_to_table(title, '[^A-Za-z]+') AS w
  WHERE length(w) > 4 ORDER BY 1 LIMIT 2000" | awk '{print "/b/acme/search?scope=community&q=" $1}' \
  > "$out/search_paths.txt"
token=$(curl -s -H "Cookie: $cookie" "$base/b/acme/ask/new" | grep -o 'name="csrf-token" content="[0-9a-f]*"' \
  | head -1 | sed 's/.*content="//;s/"//')
forum=$(psql_ "$db" -Atc "SELECT slug FROM forums ORDER BY id LIMIT 1")
for n in $(seq "${ASKS:-20}"); do
  if (( n % 2 )); then title="Soak question $n: the router drops the wifi every night after the update"
       body="Since the last firmware update my router loses the wireless connection every night and only a restart brings it back."
  else title="Pregunta $n: el router pierde la conexión wifi cada noche después de la actualización"
       body="Desde la última actualización el router pierde la conexión inalámbrica cada noche y solo vuelve si lo reinicio."
  fi
  curl -s -o /dev/null -w "%{http_code}\n" -H "Cookie: $cookie" -H "X-CSRF-Token: $token" \
    --data-urlencode "forum=$forum" --data-urlencode "title=$title" --data-urlencode "body=$body" \
    "$base/b/acme/ask/new" >> "$out/asks.txt"
done
rss() {
  for p in $(pgrep -P "$supervisor"); do
    grep -q resource_tracker "/proc/$p/cmdline" 2>/dev/null && continue
    kind=web; grep -q model-server "/proc/$p/cmdline" && kind=models
    printf '%s:%s:%s ' "$kind" "$p" "$(awk '/VmRSS/{print int($2/1024)}' "/proc/$p/status")"
  done
}
echo "0s $(rss)" > "$out/rss.txt"
start=$(date +%s); n=0
while (( $(date +%s) - start < minutes * 60 )); do
  n=$((n + 1))
  paths=$PEERS_HOME/us-run/question_paths.txt; (( n % 2 )) || paths=$out/search_paths.txt
  wrk -t2 -c8 -d20s --latency -s "$here/rotate.lua" "$base" -- "$paths" "$cookie" > "$out/run_$n.wrk"
  (( n % 2 )) && continue
  echo "$(( $(date +%s) - start ))s $(rss)" >> "$out/rss.txt"
done
for p in $(pgrep -P "$supervisor"); do
  echo "$p $(tr '\0' ' ' < "/proc/$p/cmdline" | cut -c1-60) $(awk '/VmHWM/{print int($2/1024) " MB peak"}' "/proc/$p/status")"
done > "$out/peaks.txt"
cat "$out/rss.txt"; cat "$out/peaks.txt"; sort "$out/asks.txt" | uniq -c
