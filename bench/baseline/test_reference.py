"""Tests of the baseline's torch parts on a tiny random Llama (CPU, float32). Skipped when torch or transformers is
missing: python3 -m unittest discover -s bench/baseline"""

import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import transformers  # noqa: F401
    from transformers import LlamaConfig, LlamaForCausalLM
    HAVE_TORCH = True
except ImportError:  # the machine without a GPU has no torch
    HAVE_TORCH = False

from longdep_baseline.formulas import ladm_spans  # noqa: E402


def tiny_model(attn=None):
    if attn is None:
        from longdep_baseline.reference import default_attention
        attn = default_attention()
    torch.manual_seed(3)
    shape = dict(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=4096)
    try:
        config = LlamaConfig(**shape, attn_implementation=attn)
    except TypeError:  # older transformers: set below
        config = LlamaConfig(**shape)
    config._attn_implementation = attn
    model = LlamaForCausalLM(config).eval()
    return model


@unittest.skipUnless(HAVE_TORCH, "torch and transformers are not installed")
class LadmHookTests(unittest.TestCase):
    def test_cds_from_hooks_matches_cds_from_eager_attention_probabilities(self):
        """Softmax over keys [0, start) is the causal softmax row renormalized over [0, start): so the eager model's
        attention probabilities give an independent CDS, in float64."""
        from longdep_baseline.reference import LadmRecorder
        torch.manual_seed(5)
        t, chunk, d_afs, d_cds = 700, 8, 2, 3
        ids = torch.randint(0, 101, (2, t))
        sdpa = tiny_model()  # sdpa, or eager on torch 1.13
        recorder = LadmRecorder(sdpa.model, chunk, d_afs, d_cds)
        cds, layers = recorder.run(ids)
        recorder.remove()

        eager = tiny_model("eager")
        eager.load_state_dict(sdpa.state_dict())
        with torch.inference_mode():
            attentions = eager.model(input_ids=ids, output_attentions=True, use_cache=False).attentions
        spans = ladm_spans(t, chunk, d_afs, d_cds)
        self.assertGreater(len(spans), 3)
        for layer, a in enumerate(attentions):
            a = a.double()
            for b in range(ids.shape[0]):
                afs = []
                for s in spans:
                    rows = a[b, :, s.start:s.end, :s.start]
                    rows = rows / rows.sum(dim=-1, keepdim=True)
                    col = rows.sum(dim=1).mean(dim=0)
                    pfs = [col[s.start - iv:s.end - iv].sum().item() for iv in s.intervals]
                    mean = sum(pfs) / len(pfs)
                    std = math.sqrt(sum((p - mean) ** 2 for p in pfs) / (len(pfs) - 1))
                    afs.append(sum(p * iv / t for p, iv in zip(pfs, s.intervals)) * std * s.start / t)
                expected = sum(afs) / len(afs)
                self.assertAlmostEqual(layers[b][layer], expected, delta=1e-4 * abs(expected) + 1e-7)
        for b in range(2):
            self.assertAlmostEqual(cds[b], sum(layers[b]) / 2, places=6)


@unittest.skipUnless(HAVE_TORCH, "torch and transformers are not installed")
class ProLongReferenceTests(unittest.TestCase):
    def test_pair_ppl_equals_the_prefix_cache_way(self):
        from longdep_baseline.reference import pair_ppl, pair_ppl_with_prefix_cache, single_ppl
        model = tiny_model()
        g = torch.Generator().manual_seed(9)
        chunks = [torch.randint(0, 101, (16,), generator=g).tolist() for _ in range(5)]
        pairs = [(1, 0), (3, 1), (4, 0), (4, 3)]
        cpu = torch.device("cpu")
        fresh = pair_ppl(model, chunks, pairs, 3, cpu)
        cached = pair_ppl_with_prefix_cache(model, chunks, pairs, cpu)
        for a, b in zip(fresh, cached):
            self.assertAlmostEqual(a, b, delta=1e-4 * b)
        singles = single_ppl(model, chunks, 2, cpu)
        self.assertEqual(len(singles), 5)
        # A chunk alone: exp of the mean loss of its tokens 2..l, computed here directly.
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([chunks[2]])).logits.float()[0, :-1]
            nll = torch.nn.functional.cross_entropy(logits, torch.tensor(chunks[2][1:]))
        self.assertAlmostEqual(singles[2], math.exp(nll.item()), delta=1e-4 * singles[2])


if __name__ == "__main__":
    unittest.main()
