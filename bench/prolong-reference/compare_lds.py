#!/usr/bin/env python3
"""Compares `longdep score --method prolong` output with prolong_driver.py output, record by record (by index):
statuses must agree (ok / too_short), and every ok LDS within a relative tolerance. Exit 1 on any mismatch."""
import argparse
import json


def load(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows[r["index"]] = r
    return rows


ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--ours", required=True, help="longdep score output")
ap.add_argument("--reference", required=True, help="prolong_driver.py output")
ap.add_argument("--rtol", type=float, default=1e-4)
a = ap.parse_args()
ours, ref = load(a.ours), load(a.reference)
bad = 0
worst = 0.0
print(f"{'index':>5} {'chunks':>6} {'pairs':>5} {'longdep':>22} {'run.py':>22} {'rel. diff':>10}")
for i in sorted(set(ours) | set(ref)):
    o, r = ours.get(i), ref.get(i)
    if o is None or r is None:
        print(f"{i:>5} missing on {'our' if o is None else 'the reference'} side")
        bad += 1
        continue
    if o["status"] != r["status"]:
        print(f"{i:>5} status {o['status']} vs {r['status']}")
        bad += 1
        continue
    if o["status"] != "ok":
        print(f"{i:>5} {o['status']} on both sides")
        continue
    x, y = float(o["score"]), float(r["lds"])
    scale = max(abs(x), abs(y))
    rel = 0.0 if scale == 0 else abs(x - y) / scale
    worst = max(worst, rel)
    flag = "" if rel <= a.rtol else "  <-- over tolerance"
    if rel > a.rtol:
        bad += 1
    print(f"{i:>5} {r['chunks']:>6} {r['pairs']:>5} {x:>22.15g} {y:>22.15g} {rel:>10.2e}{flag}")
print(f"largest relative difference {worst:.2e} (tolerance {a.rtol:g}); {bad} record(s) out of agreement")
raise SystemExit(1 if bad else 0)
