#!/usr/bin/env python3
"""Median table over rounds: summarize.py [--us NAME,...] [--results DIR] ROUND [ROUND ...]

Reads RESULTS/ROUND/NAME/{question,list,search}.wrk and prints, per endpoint and server,
the median req/s, p50 and p99 over the rounds, the non-2xx/3xx and socket-error totals,
the ratio ours/peer of the medians for each of our variants (--us, default "us,us-member":
anonymous and signed-in) against the issue's targets (>= 3x spirit, >= 5x askbot), and the
machine of each round (machine.txt from bench.sh)."""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(path: Path) -> dict:
    t = path.read_text()
    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", t, re.M)
        out[f"p{pct}"] = ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    out["sockerr"] = sum(map(int, m.groups())) if m else 0
    out["requests"] = int(re.search(r"(\d+) requests in", t).group(1))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("rounds", nargs="+")
    p.add_argument("--results", default=str(Path(__file__).resolve().parent.parent / "results"))
    p.add_argument("--us", default="us,us-member")
    a = p.parse_args()
    data: dict[tuple[str, str], list[dict]] = {}
    for r in a.rounds:
        for f in sorted(Path(a.results, r).glob("*/*.wrk")):
            data.setdefault((f.parent.name, f.stem), []).append(parse(f))
    extra: dict[tuple[str, str], dict] = {}
    for r in a.rounds:
        for d in sorted(Path(a.results, r).glob("*/")):
            if (d / "sizes.txt").exists():
                for line in (d / "sizes.txt").read_text().splitlines():
                    ep, code, size, _t = line.split()
                    extra.setdefault((d.name, ep), {"codes": set(), "size": size, "load": []})["codes"].add(code)
            if (d / "uptime.txt").exists():
                for line in (d / "uptime.txt").read_text().splitlines():
                    ep = line.split()[0]
                    m = re.search(r"load average: ([\d.]+)", line)
                    if m and (d.name, ep) in extra:
                        extra[(d.name, ep)]["load"].append(m.group(1))
    med = {}
    print("| server | endpoint | rounds | req/s median | req/s per round | p50 ms | p99 ms | non-2xx/3xx | socket errors | page bytes | 1-min load before each round |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, ep), runs in sorted(data.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m = {k: statistics.median(x[k] for x in runs) for k in ("rps", "p50", "p99")}
        med[(name, ep)] = m
        per = " / ".join(f"{x['rps']:.1f}" for x in runs)
        print(f"| {name} | {ep} | {len(runs)} | {m['rps']:.1f} | {per} | {m['p50']:.0f} | {m['p99']:.0f} | "
              f"{sum(x['non2xx'] for x in runs)} | {sum(x['sockerr'] for x in runs)} | "
              f"{extra.get((name, ep), {}).get('size', '?')} | {' / '.join(extra.get((name, ep), {}).get('load', []))} |")
    ours = a.us.split(",")
    targets = {"spirit": 3.0, "askbot": 5.0}
    print()
    print("| endpoint | ours | peer | ratio ours/peer req/s | target | met | ratio p50 (peer/ours) |")
    print("|---|---|---|---|---|---|---|")
    for (name, ep), m in sorted(med.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if name in ours:
            continue
        for mine in ours:
            us = med.get((mine, ep))
            if not us:
                continue
            ratio, target = us["rps"] / m["rps"], targets.get(name)
            met = "-" if target is None else ("yes" if ratio >= target else f"no ({ratio / target:.0%} of it)")
            print(f"| {ep} | {mine} | {name} | {ratio:.2f}x | {f'{target:g}x' if target else '-'} | {met} | "
                  f"{m['p50'] / us['p50']:.2f}x |")
    print()
    print("Machine per round and server (machine.txt):")
    for r in a.rounds:
        for f in sorted(Path(a.results, r).glob("*/machine.txt")):
            fields = dict(line.split(": ", 1) for line in f.read_text().splitlines() if ": " in line)
            print(f"- {r} {f.parent.name}: {fields.get('date', '?')}, {fields.get('cpu', '?')}, "
                  f"{fields.get('cores', '?')} cores, {fields.get('memory', '?')}, load before "
                  f"{fields.get('load before', '?')}, after {fields.get('load after', '?')}")


if __name__ == "__main__":
    main()
