"""The model runs of the baseline (torch + transformers), following the reference code:

LADM (ZNLP/LADM modeling_llama2.py, LlamaFlashAttention2.forward): per layer, post-RoPE queries and keys (keys repeated
for grouped-query attention); for every query span, softmax over the keys before the span in float32, cast back to
the model's dtype, summed over the span's rows, averaged over heads; PFS, AFS, CDS in torch as the reference does.
We do not patch the model: hooks capture each layer's q_proj/k_proj outputs and RoPE cos/sin (or recompute RoPE from
the module's table with transformers before 4.38), the CDS is computed from them, and the stock layer (SDPA, or eager
attention on torch 1.13) continues.

ProLong (October2001/ProLong prolong/run.py, compute_single_ppl / compute_pair_ppl / compute_ppl): chunks alone and
pairs as fresh 2l-token sequences chunk_j ++ chunk_i, batch 256, loss over chunk i's tokens 2..l, on the pairs that
`longdep bench` drew (exported in the samples file).
"""

import inspect
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch.nn import CrossEntropyLoss
from transformers.models.llama import modeling_llama

from .formulas import LadmSpan, ladm_spans

IGNORE_INDEX = -100

# torch >= 2 hands a forward pre-hook the keyword arguments (transformers >= 4.45 passes RoPE's cos/sin that way).
_PRE_HOOK_KWARGS = "with_kwargs" in inspect.signature(torch.nn.Module.register_forward_pre_hook).parameters
# transformers before 4.38 took position_ids in apply_rotary_pos_emb and computed cos/sin for a length.
_ROPE_TAKES_POSITIONS = "position_ids" in inspect.signature(modeling_llama.apply_rotary_pos_emb).parameters


def default_attention() -> str:
    """sdpa where torch has it (>= 2.0), else eager (Debian's torch 1.13)."""
    return "sdpa" if hasattr(torch.nn.functional, "scaled_dot_product_attention") else "eager"


def ladm_cds_of_layer(q: torch.Tensor, k: torch.Tensor, spans: Sequence[LadmSpan], ablation: str = "No") -> torch.Tensor:
    """CDS of one layer for a batch: q [bs, heads, T, d], k [bs, heads, T, d] (already repeated for GQA), post-RoPE.
    The reference's arithmetic and dtypes: scores in the model dtype, softmax in float32 cast back, sums in the model
    dtype, the length weights as a float32 tensor."""
    t = q.shape[2]
    scale = math.sqrt(q.shape[-1])
    all_afs = []
    for span in spans:
        start, end = span.start, span.end
        scores = torch.matmul(q[:, :, start:end, :], k[:, :, :start, :].transpose(2, 3)) / scale
        probs = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        del scores
        col = probs.sum(dim=2).mean(dim=1)  # [bs, start]
        del probs
        pfs = torch.stack([col[:, start - iv:end - iv].sum(dim=-1) for iv in span.intervals], dim=-1)  # [bs, n_iv]
        pfs_std = pfs.std(dim=1)
        if ablation != "no_len_weight":
            pfs = pfs * (torch.tensor(span.intervals, device=pfs.device) / t)
        afs = pfs.sum(dim=1)
        if ablation != "no_std":
            afs = afs * pfs_std
        if ablation != "no_len_weight":
            afs = afs * (start / t)
        all_afs.append(afs)
    return torch.stack(all_afs, dim=1).mean(dim=1)


class LadmRecorder:
    """Hooks on every decoder layer's attention of a (Llama-family) transformers model that compute that layer's CDS
    from its own q_proj/k_proj outputs and RoPE, while the stock attention runs on."""

    def __init__(self, decoder, chunk: int, d_afs: int, d_cds: int, ablation: str = "No"):
        self.decoder = decoder
        self.chunk, self.d_afs, self.d_cds, self.ablation = chunk, d_afs, d_cds, ablation
        self.per_layer: List[torch.Tensor] = []
        self.handles = []
        self._spans_for_t = {}
        config = decoder.config
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        for layer in decoder.layers:
            attn = layer.self_attn
            state = {}
            if _PRE_HOOK_KWARGS and not _ROPE_TAKES_POSITIONS:
                self.handles.append(attn.register_forward_pre_hook(self._pre(state), with_kwargs=True))
            self.handles.append(attn.q_proj.register_forward_hook(self._keep(state, "q")))
            self.handles.append(attn.k_proj.register_forward_hook(self._keep(state, "k")))
            self.handles.append(attn.register_forward_hook(self._post(state)))

    def spans(self, t: int) -> List[LadmSpan]:
        if t not in self._spans_for_t:
            self._spans_for_t[t] = ladm_spans(t, self.chunk, self.d_afs, self.d_cds)
        return self._spans_for_t[t]

    def _pre(self, state):
        def hook(module, args, kwargs):
            pe = kwargs.get("position_embeddings")
            if pe is None and len(args) > 1 and isinstance(args[1], tuple):
                pe = args[1]
            if pe is None:  # transformers 4.38 to 4.44 computed RoPE inside the attention module from positions
                hidden = args[0] if args else kwargs["hidden_states"]
                positions = kwargs.get("position_ids")
                if positions is None:
                    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
                rotary = getattr(self.decoder, "rotary_emb", None) or module.rotary_emb
                pe = rotary(hidden, positions)
            state["pe"] = pe
        return hook

    @staticmethod
    def _keep(state, name):
        def hook(module, args, output):
            state[name] = output
        return hook

    def _post(self, state):
        def hook(module, args, output):
            q_out, k_out = state.pop("q"), state.pop("k")
            bsz, t, _ = q_out.shape
            q = q_out.view(bsz, t, self.heads, self.head_dim).transpose(1, 2)
            k = k_out.view(bsz, t, self.kv_heads, self.head_dim).transpose(1, 2)
            if "pe" in state:
                cos, sin = state.pop("pe")
                q, k = modeling_llama.apply_rotary_pos_emb(q, k, cos, sin)
            else:
                # transformers before 4.38 (no pre-hook kwargs needed): the module's RoPE table for t positions, at
                # positions 0..t-1 as the decoder runs unpadded samples without position_ids.
                cos, sin = module.rotary_emb(k, seq_len=t)
                positions = torch.arange(t, device=q.device).unsqueeze(0)
                q, k = modeling_llama.apply_rotary_pos_emb(q, k, cos, sin, positions)
            k = modeling_llama.repeat_kv(k, self.heads // self.kv_heads)
            spans = self.spans(t)
            if not spans:
                self.per_layer.append(torch.full((bsz,), float("nan"), device=q.device))
            else:
                self.per_layer.append(ladm_cds_of_layer(q, k, spans, self.ablation).float())
        return hook

    def run(self, input_ids: torch.Tensor) -> Tuple[List[float], List[List[float]]]:
        """CDS per sample (mean over layers, as score.py) and per layer, for a batch of equal-length samples."""
        self.per_layer = []
        with torch.inference_mode():
            self.decoder(input_ids=input_ids, use_cache=False)
        layers = torch.stack(self.per_layer, dim=0)  # [layers, bs]
        cds = layers.mean(dim=0)
        return cds.cpu().tolist(), layers.transpose(0, 1).cpu().tolist()

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def _logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    """The LM's logits in float32, as LlamaForCausalLM returned them when the reference ran (transformers 4.3x
    upcast with logits.float(); newer versions return the model dtype, whose exp would overflow float16)."""
    logits = model(input_ids=input_ids, use_cache=False).logits
    return logits if logits.dtype == torch.float32 else logits.float()


def reference_ppl(logits: torch.Tensor, labels: torch.Tensor, nums: Sequence[int]) -> List[float]:
    """compute_ppl: shifted cross-entropy per token, mean of each row's last `num` losses, exp."""
    vocab = logits.shape[-1]
    shift_logits = logits[..., :-1, :].contiguous().view(-1, vocab)
    shift_labels = labels[..., 1:].contiguous().view(-1).to(shift_logits.device)
    loss = CrossEntropyLoss(reduction="none")(shift_logits, shift_labels).view(labels.size(0), -1)
    return [torch.exp(loss[i, -num:].mean()).float().cpu().item() for i, num in enumerate(nums)]


def single_ppl(model, chunks: Sequence[List[int]], batch_size: int, device) -> List[float]:
    """compute_single_ppl: every chunk alone, batches of `batch_size`."""
    out: List[float] = []
    with torch.inference_mode():
        for k in range(0, len(chunks), batch_size):
            batch = chunks[k:k + batch_size]
            inputs = torch.tensor(batch, device=device)
            out.extend(reference_ppl(_logits(model, inputs), inputs.clone(), [len(b) - 1 for b in batch]))
    return out


def pair_ppl(model, chunks: Sequence[List[int]], pairs: Sequence[Tuple[int, int]], batch_size: int, device,
             progress: Optional[Callable[[int], None]] = None) -> List[float]:
    """compute_pair_ppl on the given pairs: inputs chunk_j ++ chunk_i, labels ignore chunk j and chunk i's first token."""
    out: List[float] = []
    with torch.inference_mode():
        for k in range(0, len(pairs), batch_size):
            batch = pairs[k:k + batch_size]
            inputs = torch.tensor([chunks[j] + chunks[i] for i, j in batch], device=device)
            labels = torch.tensor([[IGNORE_INDEX] * (len(chunks[j]) + 1) + chunks[i][1:] for i, j in batch], device=device)
            out.extend(reference_ppl(_logits(model, inputs), labels, [len(chunks[i]) - 1 for i, _ in batch]))
            if progress:
                progress(len(out))
    return out


def pair_ppl_with_prefix_cache(model, chunks: Sequence[List[int]], pairs: Sequence[Tuple[int, int]], device) -> List[float]:
    """The same pair perplexities the other way (tests only): chunk j's keys/values kept from its own pass, chunk i run
    on top at positions l..2l-1. Agrees with pair_ppl up to rounding (SPEC §3: work that must not be done twice)."""
    out = []
    with torch.inference_mode():
        for i, j in pairs:
            prefix = model(input_ids=torch.tensor([chunks[j]], device=device), use_cache=True)
            l = len(chunks[i])
            positions = torch.arange(len(chunks[j]), len(chunks[j]) + l, device=device).unsqueeze(0)
            logits = model(input_ids=torch.tensor([chunks[i]], device=device), past_key_values=prefix.past_key_values,
                           position_ids=positions, use_cache=True).logits.float()
            labels = torch.tensor([chunks[i]], device=device)
            out.extend(reference_ppl(logits, labels, [l - 1]))
    return out
