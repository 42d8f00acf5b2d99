#!/usr/bin/env python3
"""PyTorch baseline for `longdep bench`: LADM's CDS and ProLong's LDS computed the way the reference code computes
them (Hugging Face model in float16 on a GPU or float32 on the CPU, SDPA attention (eager on torch 1.13), the reference
batch sizes), on the samples and ProLong draws that
`longdep bench --write-samples` exported, with per-sample timings. Writes JSON that `longdep bench --compare` reads.

  python3 bench/baseline/baseline.py --model tinyllama-hf --samples samples.jsonl --out baseline.json

Needs torch and transformers; runs offline. See bench/README.md.
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from longdep_baseline.formulas import finite_or_none, lds, median, read_samples  # noqa: E402


def log(msg):
    print(f"[baseline {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face checkpoint folder (longdep make-model --format hf)")
    p.add_argument("--samples", required=True, help="samples file from longdep bench --write-samples")
    p.add_argument("--out", required=True, help="JSON output for longdep bench --compare")
    p.add_argument("--methods", default="ladm,prolong", help="ladm, prolong or ladm,prolong")
    p.add_argument("--ladm-settings", default="4:4", help="d_afs:d_cds settings, comma separated (default 4:4)")
    p.add_argument("--ladm-samples", type=int, default=None, help="samples for LADM (default: all in the file)")
    p.add_argument("--prolong-samples", type=int, default=None, help="samples for ProLong (default: all in the file)")
    p.add_argument("--ladm-batch", type=int, default=16, help="LADM batch (the reference's 16); halved on out-of-memory")
    p.add_argument("--prolong-batch", type=int, default=256, help="ProLong single and pair batch (the reference's 256)")
    p.add_argument("--threshold", type=float, default=0.1, help="ProLong delta")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per method (1: first sample, cut short for ProLong)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32"], help="default float16 on cuda, float32 on cpu")
    p.add_argument("--attn", default=None,
                   help="attn_implementation (default sdpa, or eager on torch < 2; flash_attention_2 when installed)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads; default torch's own)")
    return p.parse_args(argv)


def load_model(path, dtype, attn, device):
    import torch
    from transformers import AutoModelForCausalLM
    import transformers
    kwargs = dict(attn_implementation=attn)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    # `dtype` replaced `torch_dtype` in 4.56; older versions pass an unknown `dtype` on to the config silently.
    if (major, minor) >= (4, 56):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, **kwargs)
    model.to(device).eval()
    torch.set_grad_enabled(False)
    return model


class Clock:
    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.type == "cuda"

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def now(self):
        self.sync()
        return time.perf_counter()


def is_oom(e):
    return "out of memory" in str(e).lower()


def run_ladm(model, samples, settings, batch, warmup, torch, device, clock):
    from longdep_baseline.reference import LadmRecorder
    results = []
    decoder = model.model  # LlamaModel: score.py runs the decoder without the LM head
    for d_afs, d_cds in settings:
        chunk = samples[0].chunk
        recorder = LadmRecorder(decoder, chunk, d_afs, d_cds)
        scores = [None] * len(samples)
        layers = [None] * len(samples)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            ids = [s.input_ids[:s.window] for s in samples]
            for w in range(warmup):
                t0 = clock.now()
                recorder.run(torch.tensor([ids[0]], device=device))
                log(f"ladm {d_afs}/{d_cds}: warm-up {w + 1}/{warmup} {clock.now() - t0:.3f} s")
            size, requested, batch_seconds, k = batch, batch, [], 0
            while k < len(samples):
                # A batch holds equal-length samples only (torch.tensor of a ragged list fails).
                group = [k]
                while len(group) < size and group[-1] + 1 < len(samples) and len(ids[group[-1] + 1]) == len(ids[k]):
                    group.append(group[-1] + 1)
                try:
                    t0 = clock.now()
                    cds, per_layer = recorder.run(torch.tensor([ids[g] for g in group], device=device))
                    seconds = clock.now() - t0
                except RuntimeError as e:
                    if not is_oom(e) or size == 1:
                        raise
                    torch.cuda.empty_cache()
                    size = max(1, size // 2)
                    log(f"ladm {d_afs}/{d_cds}: out of memory at batch {len(group)}; trying {size}")
                    continue
                batch_seconds.append(seconds)
                for n, g in enumerate(group):
                    scores[g] = finite_or_none(cds[n])
                    layers[g] = [finite_or_none(v) for v in per_layer[n]]
                log(f"ladm {d_afs}/{d_cds}: samples {group[0]}..{group[-1]} (batch {len(group)}, {len(ids[k])} tokens) "
                    f"{seconds:.3f} s, {seconds / len(group):.3f} s/sample")
                k = group[-1] + 1
        finally:
            recorder.remove()
        total = sum(batch_seconds)
        results.append({
            "method": "ladm", "d_afs": d_afs, "d_cds": d_cds,
            "batch_size_requested": requested, "batch_size": size,
            "seconds_per_sample": total / len(samples), "batch_seconds": batch_seconds,
            "scores": scores, "layers": layers,
            "peak_memory_bytes": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
        })
    return results


def run_prolong(model, samples, batch, threshold, warmup, torch, device, clock):
    from longdep_baseline.reference import pair_ppl, single_ppl
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    size = batch
    for w in range(warmup):
        s = samples[0]
        chunks = s.chunks()
        t0 = clock.now()
        single_ppl(model, chunks, size, device)
        pair_ppl(model, chunks, s.pairs[:size], size, device)
        log(f"prolong: warm-up {w + 1}/{warmup} (singles and one pair batch) {clock.now() - t0:.3f} s")
    seconds, scores, singles, pairs_out, used = [], [], [], [], []
    for n, s in enumerate(samples):
        chunks = s.chunks()
        while True:
            try:
                t0 = clock.now()
                sp = single_ppl(model, chunks, size, device)
                pp = pair_ppl(model, chunks, s.pairs, size, device)
                score = lds(sp, s.pairs, pp, s.chunk_count_n, threshold) if len(chunks) >= 2 else math.nan
                dt = clock.now() - t0
                break
            except RuntimeError as e:
                if not is_oom(e) or size == 1:
                    raise
                torch.cuda.empty_cache()
                size = max(1, size // 2)
                log(f"prolong: out of memory; batch {size}")
        seconds.append(dt)
        scores.append(finite_or_none(score))
        singles.append([finite_or_none(v) for v in sp])
        pairs_out.append([finite_or_none(v) for v in pp])
        used.append(len(s.pairs))
        log(f"prolong: sample {n + 1}/{len(samples)} ({len(chunks)} chunks, {len(s.pairs)} pairs) {dt:.3f} s, LDS {score:.6g}")
    return [{
        "method": "prolong", "batch_size_requested": batch, "batch_size": size,
        "seconds_per_sample": median(seconds), "mean_seconds_per_sample": sum(seconds) / len(seconds),
        "seconds": seconds, "scores": scores, "pairs_used": used, "single_ppl": singles, "pair_ppl": pairs_out,
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
    }]


def main(argv=None):
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("ladm", "prolong")]
    if bad or not methods:
        sys.exit(f"baseline: --methods must name ladm and/or prolong (got {args.methods!r})")
    settings = []
    for part in args.ladm_settings.split(","):
        try:
            a, c = (int(x) for x in part.split(":"))
        except ValueError:
            sys.exit(f"baseline: --ladm-settings entry {part!r} is not d_afs:d_cds")
        settings.append((a, c))

    wanted = [n for m, n in (("ladm", args.ladm_samples), ("prolong", args.prolong_samples)) if m in methods]
    limit = None if None in wanted else max(wanted)
    samples = read_samples(args.samples, limit)
    if not samples:
        sys.exit(f"baseline: {args.samples} holds no sample")

    import torch
    import transformers
    from longdep_baseline.reference import default_attention
    if args.threads:
        torch.set_num_threads(args.threads)
    args.attn = args.attn or default_attention()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype_name = args.dtype or ("float16" if device.type == "cuda" else "float32")
    dtype = getattr(torch, dtype_name)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}, {dtype_name}, attention {args.attn}, "
        f"{torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    model = load_model(args.model, dtype, args.attn, device)
    log(f"loaded {args.model} in {time.perf_counter() - t0:.1f} s")
    clock = Clock(torch, device)

    out = {
        "tool": "longdep-baseline", "format": 1,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "dtype": dtype_name, "attn_implementation": args.attn, "threads": torch.get_num_threads(),
        "model": os.path.abspath(args.model),
        "samples_file": os.path.abspath(args.samples),
        "samples": [{"index": s.index, "id": s.id, "tokens": len(s.input_ids), "hash": s.hash} for s in samples],
        "notes": [
            "LADM: hooks capture each layer's q_proj/k_proj outputs and RoPE; CDS per the reference's modified "
            "attention (softmax in float32 cast to the model dtype, sum over rows, mean over heads); the stock layer continues",
            "ProLong: reference compute_single_ppl/compute_pair_ppl on the pairs longdep bench drew; logits upcast to "
            "float32 before the loss, as transformers 4.3x did when the reference ran",
        ],
        "methods": [],
    }
    n_all = len(samples)
    if "ladm" in methods:
        subset = samples[:args.ladm_samples or n_all]
        res = run_ladm(model, subset, settings, args.ladm_batch, args.warmup, torch, device, clock)
        for r in res:
            r["scores"] += [None] * (n_all - len(subset))
            r["layers"] += [None] * (n_all - len(subset))
            log(f"LADM {r['d_afs']}/{r['d_cds']}: {r['seconds_per_sample']:.3f} s/sample (batch {r['batch_size']})")
        out["methods"] += res
    if "prolong" in methods:
        subset = samples[:args.prolong_samples or n_all]
        res = run_prolong(model, subset, args.prolong_batch, args.threshold, args.warmup, torch, device, clock)
        for r in res:
            pad = n_all - len(subset)
            for key in ("scores", "single_ppl", "pair_ppl", "pairs_used"):
                r[key] += [None] * pad
            log(f"ProLong: {r['seconds_per_sample']:.3f} s/sample (median of {len(subset)})")
        out["methods"] += res

    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, args.out)
    for r in out["methods"]:
        label = f"LADM {r['d_afs']}/{r['d_cds']}" if r["method"] == "ladm" else "ProLong"
        shown = ", ".join("-" if v is None else f"{v:.6g}" for v in r["scores"])
        print(f"{label}: {r['seconds_per_sample']:.3f} s/sample; scores: {shown}")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
