"""The baseline against longdep's CPU engine on a tiny random Llama: both compute LADM's CDS and ProLong's perplexities
and LDS on the same samples and draws (float32, CPU), and `longdep bench --compare` must find them equal up to
rounding. Skipped when torch or transformers is missing, or when longdep is not built (./build.sh).

  PYTHONPATH=<transformers site> /usr/bin/python3 -m unittest discover -s bench/baseline
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.dirname(os.path.dirname(HERE))
LONGDEP = os.path.join(REPO, "longdep")

try:
    import torch  # noqa: F401
    import transformers  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


def longdep_built():
    try:
        return subprocess.run([LONGDEP, "--help"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@unittest.skipUnless(HAVE_TORCH, "torch and transformers are not installed")
@unittest.skipUnless(HAVE_TORCH and longdep_built(), "longdep is not built (./build.sh)")
class EngineAgreementTests(unittest.TestCase):
    def run_longdep(self, *args):
        r = subprocess.run([LONGDEP, *args], capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, f"longdep {' '.join(args)}:\n{r.stderr[-3000:]}")
        return r

    def test_baseline_and_cpu_engine_agree_on_a_tiny_llama(self):
        import baseline
        with tempfile.TemporaryDirectory() as tmp:
            hf = os.path.join(tmp, "hf")
            samples = os.path.join(tmp, "samples.jsonl")
            ours = os.path.join(tmp, "bench.json")
            theirs = os.path.join(tmp, "baseline.json")
            compared = os.path.join(tmp, "compare.json")
            self.run_longdep("make-model", "--shape", "tiny", "--format", "hf", "--dtype", "f32", "-o", hf)
            self.run_longdep("bench", "--model", hf, "--device", "cpu", "--threads", "2", "--tokens", "512", "--samples", "2",
                             "--chunk", "16", "--pairs", "20", "--ladm-settings", "4:4", "--warmup", "0", "--no-phases",
                             "--json", ours, "--write-samples", samples)
            baseline.main(["--model", hf, "--samples", samples, "--out", theirs, "--device", "cpu", "--dtype", "float32",
                           "--ladm-settings", "4:4", "--warmup", "0", "--threads", "2"])
            self.run_longdep("bench", "--compare", theirs, "--results", ours, "--compare-json", compared)
            with open(compared, encoding="utf-8") as f:
                rows = {r["method"]: r for r in json.load(f)["methods"]}
            with open(theirs, encoding="utf-8") as f:
                base = {m["method"]: m for m in json.load(f)["methods"]}

        self.assertEqual(set(rows), {"ladm", "prolong"})
        ladm, prolong = rows["ladm"], rows["prolong"]
        self.assertEqual(ladm["samples"], 2)
        # Every per-layer CDS (LADM) and every ln perplexity (ProLong) of one engine against the other's.
        self.assertGreater(ladm["pearson_detail"], 0.99999, ladm)
        self.assertLess(ladm["max_relative_difference"], 1e-3, ladm)
        self.assertGreater(prolong["pearson_detail"], 0.99999, prolong)
        self.assertLess(prolong["max_relative_difference"], 1e-4, prolong)
        # The baseline really ran the reference way: every pair drawn, scores of both samples (4 spans at 512 tokens).
        self.assertEqual(base["prolong"]["pairs_used"], [20, 20])
        self.assertTrue(all(s is not None for s in base["ladm"]["scores"]), base["ladm"]["scores"])


if __name__ == "__main__":
    unittest.main()
