#!/usr/bin/env python3
"""Writes input_ids records for the fidelity check: lengths from one chunk to the whole window (so neither side
draws chunks), some with a copied segment (so pairs lower the perplexity and LDS is not always 0)."""
import argparse
import json
import random

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--output", required=True)
ap.add_argument("--vocab", type=int, required=True)
ap.add_argument("--chunk", type=int, default=32)
ap.add_argument("--window", type=int, default=256)
ap.add_argument("--records", type=int, default=8)
ap.add_argument("--seed", type=int, default=5)
a = ap.parse_args()
rng = random.Random(a.seed)
n_max = a.window // a.chunk
with open(a.output, "w", encoding="utf-8") as f:
    for k in range(a.records):
        chunks = 1 + k % n_max if k < n_max else rng.randint(2, n_max)
        n = chunks * a.chunk + rng.randrange(a.chunk)       # a partial chunk at the end, dropped by both
        ids = [rng.randrange(a.vocab) for _ in range(n)]
        if k % 2 == 0 and chunks >= 4:
            seg = a.chunk
            at = (chunks // 2) * a.chunk
            ids[at:at + seg] = ids[0:seg]
        f.write(json.dumps({"id": f"r{k}", "input_ids": ids}) + "\n")
