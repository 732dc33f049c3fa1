#!/usr/bin/env bash
# One benchmark round against one running server.
#   bench.sh NAME ROUND BASE_URL PATHS_FILE LIST_PATH SEARCH_PATH [SEARCH_COOKIE]
# PATHS_FILE: the thread/question paths to cycle through (from <peer>/gen_paths.py).
# Writes results/ROUND/NAME/{question,list,search}.wrk, uptime.txt, sizes.txt, machine.txt
# (CPU model, cores, memory, load; under RESULTS, default ../results).
# Env: THREADS=2 CONN=8 DURATION=20s WARMUP=5s ENDPOINTS="question list search"
#      COOKIE_ALL=1 sends SEARCH_COOKIE with every endpoint (a signed-in visitor), not only search.
#      CPU_PIDS="pid ..." also logs those processes' CPU ticks (utime+stime) around each run,
#      to see how the load spreads over the server's worker processes (cpu.txt).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=$1 round=$2 base=$3 paths=$4 list=$5 search=$6 cookie=${7:-}
out=${RESULTS:-$here/../results}/$round/$name
mkdir -p "$out"
T=${THREADS:-2} C=${CONN:-8} D=${DURATION:-20s} W=${WARMUP:-5s}
endpoints=${ENDPOINTS:-question list search}
paths=$(cd "$(dirname "$paths")" && pwd)/$(basename "$paths")
: > "$out/sizes.txt"
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  echo "cores: $(nproc)"; echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"; echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"; } > "$out/machine.txt"
for ep in $endpoints; do
  hdr=()
  case $ep in
    question) url=$base; script=(-s "$here/rotate.lua"); args=(-- "$paths")
              if [ -n "${COOKIE_ALL:-}" ]; then args=(-- "$paths" "$cookie"); fi ;;
    list) url=$base$list; script=(); args=()
          if [ -n "${COOKIE_ALL:-}" ]; then hdr=(-H "Cookie: $cookie"); fi ;;
    search) url=$base$search; script=(); args=()
            if [ -n "$cookie" ]; then hdr=(-H "Cookie: $cookie"); fi ;;
  esac
  probe=$url; [ "$ep" = question ] && probe=$base$(head -1 "$paths")
  probe_hdr=("${hdr[@]+"${hdr[@]}"}")
  if [ "$ep" = question ] && [ -n "${COOKIE_ALL:-}" ]; then probe_hdr=(-H "Cookie: $cookie"); fi
  # A refused or reset probe is recorded (a server that crashed is a result), not fatal.
  curl -s -o /dev/null ${probe_hdr[@]+"${probe_hdr[@]}"} -w "$ep %{http_code} %{size_download} %{time_total}\n" "$probe" >> "$out/sizes.txt" \
    || echo "$ep probe-failed($?) 0 0" >> "$out/sizes.txt"
  wrk -t"$T" -c"$C" -d"$W" ${hdr[@]+"${hdr[@]}"} ${script[@]+"${script[@]}"} "$url" ${args[@]+"${args[@]}"} > /dev/null
  echo "$ep $(date -u +%H:%M:%S) $(uptime)" >> "$out/uptime.txt"
  ticks() { for p in ${CPU_PIDS:-}; do awk -v p="$p" '{printf "%s:%d ", p, $14+$15}' "/proc/$p/stat" 2>/dev/null; done; }
  before=$(ticks)
  wrk -t"$T" -c"$C" -d"$D" --latency --timeout 10s ${hdr[@]+"${hdr[@]}"} ${script[@]+"${script[@]}"} "$url" ${args[@]+"${args[@]}"} > "$out/$ep.wrk"
  if [ -n "${CPU_PIDS:-}" ]; then echo "$ep before $before after $(ticks)" >> "$out/cpu.txt"; fi
  rps=$(awk '/Requests\/sec/{print $2}' "$out/$ep.wrk")
  echo "$name $round $ep $rps req/s"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
