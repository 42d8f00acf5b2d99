"""Tests of the baseline's plain-Python parts (no torch needed): python3 -m unittest discover -s bench/baseline"""

import json
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from longdep_baseline.formulas import (compute_de, fnv1a64, ladm_spans, lds, median, pearson,  # noqa: E402
                                       read_samples)


class HashTests(unittest.TestCase):
    def test_same_constants_as_the_engine(self):
        # The C# test BenchSamplesTests.Hash_IsFnv1a64OfLittleEndianInt32 asserts the same three values.
        self.assertEqual(fnv1a64([]), "cbf29ce484222325")
        self.assertEqual(fnv1a64([1, 2, 3]), "fd1f0f4381eb0395")
        self.assertEqual(fnv1a64([-1, 31999, 0]), "dcd5bb95edf7f912")


class LadmScheduleTests(unittest.TestCase):
    def test_one_span_just_past_the_bound(self):
        # l 128, d 4/4: interval 512, stride 512, keep 128, bound 128 + 4*512 = 2176; start 2400-128 = 2272 only.
        spans = ladm_spans(2400, 128, 4, 4)
        self.assertEqual([(s.start, s.end, s.intervals) for s in spans], [(2272, 2400, (512, 1024, 1536, 2048))])

    def test_d_afs_2_d_cds_4(self):
        # interval 256, stride 512, bound 128 + 1024 = 1152: starts 2872, 2360, 1848, 1336 (824 fails the bound).
        spans = ladm_spans(3000, 128, 2, 4)
        self.assertEqual([s.start for s in spans], [2872, 2360, 1848, 1336])
        self.assertTrue(all(s.end == s.start + 128 for s in spans))
        # intervals while start - iv >= 128: for 1336, iv <= 1208 -> 256, 512, 768, 1024.
        self.assertEqual(spans[-1].intervals, (256, 512, 768, 1024))
        self.assertEqual(spans[0].intervals, tuple(range(256, 2745, 256)))

    def test_too_short_has_no_span(self):
        self.assertEqual(ladm_spans(2176 + 128, 128, 4, 4), [])


class LdsTests(unittest.TestCase):
    def test_compute_de_hand_cases(self):
        self.assertEqual(compute_de([3.7]), 1.0)
        self.assertAlmostEqual(compute_de([0.5, 0.5]), 0.0, places=12)
        # p = 1/4, 3/4: H = -(1/4 ln 1/4 + 3/4 ln 3/4); DSP = (ln 2 - H) / ln 2.
        h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
        self.assertAlmostEqual(compute_de([0.0, math.log(3)]), (math.log(2) - h) / math.log(2), places=12)

    def test_zero_probability_is_lifted(self):
        # exp(-1000) underflows to 0: p = (p + 1e-12) / sum, so the entropy stays finite and DSP just below 1.
        v = compute_de([0.0, -1000.0])
        self.assertTrue(0.999 < v < 1.0)

    def test_lds_hand_worked(self):
        # N = 4 window chunks (DDI scale 1/3); single = 10, 10, 8; pairs (1,0) 8, (2,0) 6, (2,1) 7.5.
        single = [10.0, 10.0, 8.0]
        pairs = [(2, 1), (1, 0), (2, 0)]  # any order: summed by i, then j
        ppl = [7.5, 8.0, 6.0]
        # row 1: one pair -> DSP 1; DST 0.2 > 0.1 adds (0.2 + 1/3) * 1.
        # row 2: dlt 2 and 0.5 -> p = e^1.5 / (e^1.5 + 1), 1 / (e^1.5 + 1); DST(2,0) = 0.25 adds (0.25 + 2/3) * DSP;
        #        DST(2,1) = 0.0625 is below the threshold.
        p1 = math.exp(1.5) / (math.exp(1.5) + 1)
        p2 = 1 - p1
        dsp2 = (math.log(2) + p1 * math.log(p1) + p2 * math.log(p2)) / math.log(2)
        expected = (0.2 + 1 / 3) + (0.25 + 2 / 3) * dsp2
        self.assertAlmostEqual(lds(single, pairs, ppl, 4, 0.1), expected, places=12)
        self.assertAlmostEqual(expected, 0.82179, places=4)

    def test_nan_perplexity_gives_nan(self):
        self.assertTrue(math.isnan(lds([1.0, float("nan")], [(1, 0)], [0.5], 4, 0.1)))


class StatisticsTests(unittest.TestCase):
    def test_pearson_hand_worked(self):
        self.assertAlmostEqual(pearson([1, 2, 3, 4], [2, 4, 5, 4]), 3.5 / math.sqrt(23.75), places=12)
        self.assertAlmostEqual(pearson([1, 2, None, 3, 4], [2, 4, 9, 5, 4]), 3.5 / math.sqrt(23.75), places=12)
        self.assertTrue(math.isnan(pearson([1, 1, 1], [1, 2, 3])))

    def test_median(self):
        self.assertEqual(median([3, 1, 2]), 2)
        self.assertEqual(median([4, 1, 3, 2]), 2.5)


class SamplesFileTests(unittest.TestCase):
    def line(self, ids, **over):
        rec = {"index": 4, "id": "synthetic-4", "tokens": len(ids), "hash": fnv1a64(ids), "input_ids": ids,
               "prolong": {"window": 8, "chunk": 2, "chunk_count_n": 4, "pairs_requested": 2, "seed": 11, "total_chunks": 4,
                           "chunk_starts": [0, 2, 6], "pairs": [[1, 0], [2, 1]]}}
        rec.update(over)
        return json.dumps(rec)

    def write(self, *lines):
        fd, path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.addCleanup(os.remove, path)
        return path

    def test_reads_ids_chunks_and_pairs(self):
        ids = [5, 6, 7, 8, 9, 10, 11, 12]
        s = read_samples(self.write(self.line(ids)))[0]
        self.assertEqual((s.index, s.id, s.window, s.chunk, s.chunk_count_n, s.seed), (4, "synthetic-4", 8, 2, 4, 11))
        self.assertEqual(s.chunks(), [[5, 6], [7, 8], [11, 12]])
        self.assertEqual(s.pairs, [(1, 0), (2, 1)])

    def test_altered_ids_and_bad_pairs_are_refused_with_the_line(self):
        ids = [5, 6, 7, 8, 9, 10, 11, 12]
        bad = json.loads(self.line(ids))
        bad["input_ids"][0] = 99
        with self.assertRaisesRegex(ValueError, "line 2.*altered"):
            read_samples(self.write(self.line(ids), json.dumps(bad)))
        bad = json.loads(self.line(ids))
        bad["prolong"]["pairs"] = [[0, 1]]
        with self.assertRaisesRegex(ValueError, r"pair \(0, 1\)"):
            read_samples(self.write(json.dumps(bad)))
        with self.assertRaisesRegex(ValueError, "'input_ids'"):
            read_samples(self.write(json.dumps({"text": "a corpus record"})))


if __name__ == "__main__":
    unittest.main()
