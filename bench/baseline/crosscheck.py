#!/usr/bin/env python3
"""Recomputes the engine's scores from its own measurements with the baseline's plain-Python formulas: LDS from the
single_ppl/pair_ppl that `longdep bench --json` reports and the pairs in the samples file, CDS as the mean of its
per-layer values. Agreement to 1e-9 shows that the baseline's formulas and the engine's are the same arithmetic, so a
difference between baseline and engine scores comes from the model runs alone. No torch needed.

  python3 bench/baseline/crosscheck.py --bench bench.json --samples samples.jsonl
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from longdep_baseline.formulas import lds, read_samples  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", required=True)
    p.add_argument("--samples", required=True)
    p.add_argument("--tolerance", type=float, default=1e-9)
    args = p.parse_args(argv)
    with open(args.bench, encoding="utf-8") as f:
        bench = json.load(f)
    samples = {s.index: s for s in read_samples(args.samples)}
    threshold = bench["settings"]["threshold"]
    worst, checked = 0.0, 0
    for m in bench["methods"]:
        for k, (meta, score) in enumerate(zip(bench["samples"], m["scores"])):
            if score is None:
                continue
            if m["method"] == "prolong":
                s = samples[meta["index"]]
                if s.hash != meta["hash"]:
                    sys.exit(f"crosscheck: sample {meta['index']} differs between {args.bench} and {args.samples}")
                mine = lds(m["single_ppl"][k], s.pairs, m["pair_ppl"][k], s.chunk_count_n, threshold)
            else:
                layers = m["layers"][k]
                mine = sum(layers) / len(layers)
            rel = abs(mine - score) / max(abs(score), 1e-12)
            worst = max(worst, rel if math.isfinite(rel) else math.inf)
            checked += 1
    print(f"crosscheck: {checked} scores recomputed from the engine's measurements; worst relative difference {worst:.3e}")
    if checked == 0 or worst > args.tolerance:
        sys.exit(f"crosscheck: FAILED (tolerance {args.tolerance})")
    print("crosscheck: ok")


if __name__ == "__main__":
    main()
