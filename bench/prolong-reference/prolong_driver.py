#!/usr/bin/env python3
"""Runs ProLong's own scoring functions on given token ids and writes one LDS per record.

ProLong's `prolong/run.py` (github.com/October2001/ProLong) is imported as a module from the checkout that
PYTHONPATH points at (run_reference.sh sets it); nothing of it is copied here. Its functions read the module
globals `model`, `device` and `args`, which this driver sets exactly as its `__main__` block would, except:

- the model is loaded in float32 (run.py asks for float16) and runs on the CPU, eager attention;
- records carry `input_ids` (as `longdep score` reads them); `construct_data` gets them through a callable that
  returns them unchanged instead of a tokenizer, so chunking, the final-partial-chunk rule and the seeded chunk
  draw are run.py's own;
- `--pairs all` passes sample_size = -1 (every pair j < i), which run.py's `compute_pair_ppl` supports; a number
  passes it on as run.py would (records with fewer pairs then get run.py's all-inf matrix and LDS 0);
- a record with fewer than two chunks is written as `too_short` (run.py would crash or score 0) and an exception
  is not turned into LDS 0 (run.py's `except`): it stops the run.

Output: one JSON line per input record: index, id, status, lds, chunks, pairs, single_ppl.
"""
import argparse
import json
import math
import sys
import types


def read_records(path):
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint folder")
    ap.add_argument("--input", required=True, help="JSON lines with input_ids")
    ap.add_argument("--output", required=True, help="JSON lines, one per record")
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--window", type=int, default=32768)
    ap.add_argument("--threshold", type=float, default=0.1)
    ap.add_argument("--pairs", default="all", help="'all' or a sample size, as run.py's --sample_size")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--batch", type=int, default=256, help="single and pair batch size")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()

    import torch
    import transformers
    import run as prolong  # prolong/run.py of the ProLong checkout

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    sample_size = -1 if a.pairs == "all" else int(a.pairs)

    prolong.args = types.SimpleNamespace(
        chunk_size=a.chunk, window_size=a.window, chunk_num=a.window // a.chunk,
        dlt_ppl_threshold=a.threshold, seed=a.seed)
    prolong.set_seed(seed=a.seed)
    prolong.device = torch.device("cpu")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        a.model, torch_dtype=torch.float32, attn_implementation="eager")
    model.to(prolong.device)
    model.eval()
    prolong.model = model

    def ids_as_tokenized(ids):
        return {"input_ids": list(ids)}

    print(f"transformers {transformers.__version__}, torch {torch.__version__}, model {type(model).__name__}, "
          f"chunk {a.chunk}, window {a.window} (N = {a.window // a.chunk}), pairs {a.pairs}", file=sys.stderr)
    with open(a.output, "w", encoding="utf-8") as out:
        for index, rec in enumerate(read_records(a.input)):
            ids = rec.get("input_ids")
            row = {"index": index, "id": rec.get("id")}
            if not isinstance(ids, list) or len(ids) // a.chunk < 2:
                row.update(status="too_short", lds=None, chunks=0 if not isinstance(ids, list) else len(ids) // a.chunk)
                out.write(json.dumps(row) + "\n")
                continue
            data_list = prolong.construct_data(ids, ids_as_tokenized, a.chunk, prolong.args.chunk_num)
            single = prolong.compute_single_ppl(data_list, a.batch)
            pair = prolong.compute_pair_ppl(data_list, a.batch, sample_size)
            lds, _, _ = prolong.compute_lds(single_ppl=single, pair_ppl=pair)
            lds = float(lds)
            n = len(data_list)
            pairs = sum(1 for i in range(n) for j in range(i) if pair[i][j] != float("inf"))
            row.update(status="ok" if math.isfinite(lds) else "numeric_error", lds=lds, chunks=n, pairs=pairs,
                       single_ppl=single)
            out.write(json.dumps(row) + "\n")
            print(f"record {index}: {n} chunks, {pairs} pairs, LDS {lds!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
