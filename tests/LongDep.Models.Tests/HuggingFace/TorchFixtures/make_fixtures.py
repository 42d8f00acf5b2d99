#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures that PyTorchCheckpointTests read, with real torch (and transformers for
the checkpoint folders). Rerun from this folder:

    PYTHONPATH=<a site with transformers> /usr/bin/python3 make_fixtures.py

- views.bin: a state dict of views that share storages (tied, sliced, transposed, expanded, strided), float16,
  bfloat16, a 0-d and an empty tensor, an int64 tensor and an nn.Parameter; views.json has every tensor's shape and
  values (float64 text of the stored values) as torch reads them back.
- module.bin: an nn.Module's state_dict() (an OrderedDict with _metadata, restored by BUILD) saved to a file.
- buffer.bin: the same saved through a BytesIO (torch names the top folder 'archive' then).
- llama-bin/ and llama-safetensors/: one tiny LlamaForCausalLM saved by transformers' save_pretrained, as sharded
  pytorch_model-0000N-of-0000M.bin + index and as model.safetensors.
"""
import collections
import io
import json
import os

import torch

torch.manual_seed(21)
here = os.path.dirname(os.path.abspath(__file__))


def values(t):
    return [float(x) for x in t.detach().double().reshape(-1).tolist()]


emb = torch.randn(5, 4)
half = torch.randn(3, 2).half()
sd = collections.OrderedDict()
sd["emb"] = emb
sd["tied"] = emb                        # the same object: pickled once, then fetched from the memo
sd["tied_detached"] = emb.detach()      # another object on the same storage
sd["slice"] = emb[1:4, 1:3]             # offset 5, stride (4, 1)
sd["transposed"] = emb.t()              # stride (1, 4)
sd["half"] = half
sd["half_t"] = half.t()
sd["bf16"] = torch.randn(7).bfloat16()
sd["expanded"] = torch.arange(3.0).expand(2, 3)   # stride (0, 1)
sd["step"] = torch.arange(10.0)[::3]    # stride 3
sd["scalar"] = torch.tensor(1.5)
sd["empty"] = torch.zeros(0, 3)
sd["long"] = torch.arange(4)
sd["param"] = torch.nn.Parameter(torch.tensor([0.25, -2.0]))   # _rebuild_parameter
torch.save(sd, os.path.join(here, "views.bin"))
back = torch.load(os.path.join(here, "views.bin"))
with open(os.path.join(here, "views.json"), "w") as f:
    json.dump({k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": values(v)} for k, v in back.items()}, f, indent=1)

module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
torch.save(module.state_dict(), os.path.join(here, "module.bin"))
buf = io.BytesIO()
torch.save(module.state_dict(), buf)
with open(os.path.join(here, "buffer.bin"), "wb") as f:
    f.write(buf.getvalue())
with open(os.path.join(here, "module.json"), "w") as f:
    json.dump({k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": values(v)} for k, v in module.state_dict().items()}, f, indent=1)

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

cfg = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
model = LlamaForCausalLM(cfg).eval()
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.randn_like(p))
model.save_pretrained(os.path.join(here, "llama-bin"), safe_serialization=False, max_shard_size="3KB")
model.save_pretrained(os.path.join(here, "llama-safetensors"), safe_serialization=True)
for d in ("llama-bin", "llama-safetensors"):
    gen = os.path.join(here, d, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
print("torch", torch.__version__)
