"""The parts of the baseline that need no torch: LADM's span schedule, ProLong's LDS arithmetic, the samples file
that `longdep bench --write-samples` exports, and small statistics. Written from SPEC.md §2-3 and the reference code
(ZNLP/LADM modeling_llama2.py, October2001/ProLong prolong/run.py)."""

import json
import math
import struct
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211
MASK64 = (1 << 64) - 1


def fnv1a64(ids: Sequence[int]) -> str:
    """FNV-1a 64 over the ids as little-endian int32 bytes, 16 lowercase hex digits (as longdep's BenchSamples.Hash)."""
    h = FNV_OFFSET
    for b in struct.pack("<%di" % len(ids), *ids):
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return "%016x" % h


@dataclass(frozen=True)
class LadmSpan:
    """Query rows [start, end) read keys [0, start); PFS is taken at each interval iv (keys [start-iv, end-iv))."""
    start: int
    end: int
    intervals: Tuple[int, ...]


def ladm_spans(t: int, chunk: int, d_afs: int, d_cds: int) -> List[LadmSpan]:
    """The reference's loops: start = T-l, T-l-stride, ... while start > keep + 4*interval (4, not d_afs);
    intervals iv = interval, 2*interval, ... while start - iv >= keep; keep = l."""
    interval, stride, keep = chunk * d_afs, chunk * d_cds, chunk
    spans = []
    for start in range(t - chunk, keep + 4 * interval, -stride):
        end = min(start + chunk, t)
        ivs = []
        for iv in range(interval, t + interval, interval):
            if start - iv < keep:
                break
            ivs.append(iv)
        spans.append(LadmSpan(start, end, tuple(ivs)))
    return spans


def compute_de(row: Sequence[float]) -> float:
    """ProLong's DSP of one row (the reference's compute_de): one value gives 1; else softmax (max subtracted), if a
    probability is exactly 0 add 1e-12 and renormalize, then clip((ln m - H) / ln m, 0, 1)."""
    m = len(row)
    if m == 1:
        return 1.0
    if any(math.isnan(x) for x in row):
        return math.nan
    top = max(row)
    e = [math.exp(x - top) for x in row]
    s = sum(e)
    p = [v / s for v in e]
    if any(v == 0.0 for v in p):
        p = [v + 1e-12 for v in p]
        s = sum(p)
        p = [v / s for v in p]
    entropy = -sum(v * math.log(v) for v in p)
    max_entropy = math.log(m)
    return min(max((max_entropy - entropy) / max_entropy, 0.0), 1.0)


def lds(single_ppl: Sequence[float], pairs: Sequence[Tuple[int, int]], pair_ppl: Sequence[float],
        chunk_count_n: int, threshold: float) -> float:
    """LDS over the drawn pairs (SPEC §3): dlt = single[i] - pair; DSP per row over its drawn pairs; DST = dlt / single[i];
    DDI = clip((i - j) / (N - 1), 0, 1) with N = W / l; sum of (DST + DDI) * DSP[i] over pairs with DST > threshold,
    rows in order i, then j (the reference's order). NaN when a value is not finite."""
    order = sorted(range(len(pairs)), key=lambda k: (pairs[k][0], pairs[k][1]))
    rows: Dict[int, List[float]] = {}
    for k in order:
        i, _ = pairs[k]
        rows.setdefault(i, []).append(single_ppl[i] - pair_ppl[k])
    dsp = {i: compute_de(row) for i, row in rows.items()}
    dis_scale = 1.0 / (chunk_count_n - 1)
    total = 0.0
    for k in order:
        i, j = pairs[k]
        dst = (single_ppl[i] - pair_ppl[k]) / single_ppl[i]
        if math.isnan(dst):
            return math.nan
        if dst > threshold:
            total += (dst + min(max((i - j) * dis_scale, 0.0), 1.0)) * dsp[i]
    return total


@dataclass
class Sample:
    """One line of a `longdep bench --write-samples` file."""
    index: int
    id: str
    input_ids: List[int]
    hash: str
    window: int
    chunk: int
    chunk_count_n: int
    pairs_requested: int
    seed: int
    chunk_starts: List[int]
    pairs: List[Tuple[int, int]]

    def chunks(self) -> List[List[int]]:
        """The kept ProLong chunks, each `chunk` tokens, in document order."""
        return [self.input_ids[s:s + self.chunk] for s in self.chunk_starts]


def parse_sample(line: str, where: str) -> Sample:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not JSON ({e})") from e

    def need(obj, name, kind):
        if not isinstance(obj, dict) or name not in obj or not isinstance(obj[name], kind):
            raise ValueError(f"{where}: expected a field '{name}'; is this a file from 'longdep bench --write-samples'?")
        return obj[name]

    ids = need(rec, "input_ids", list)
    p = need(rec, "prolong", dict)
    sample = Sample(
        index=need(rec, "index", int), id=need(rec, "id", str), input_ids=[int(t) for t in ids], hash=need(rec, "hash", str),
        window=need(p, "window", int), chunk=need(p, "chunk", int), chunk_count_n=need(p, "chunk_count_n", int),
        pairs_requested=need(p, "pairs_requested", int), seed=need(p, "seed", int),
        chunk_starts=[int(s) for s in need(p, "chunk_starts", list)],
        pairs=[(int(a), int(b)) for a, b in need(p, "pairs", list)])
    if fnv1a64(sample.input_ids) != sample.hash:
        raise ValueError(f"{where}: the ids hash to {fnv1a64(sample.input_ids)} but the line says {sample.hash} (the file was altered)")
    n = len(sample.chunk_starts)
    for s in sample.chunk_starts:
        if s < 0 or s + sample.chunk > len(sample.input_ids):
            raise ValueError(f"{where}: chunk start {s} is outside the sample's {len(sample.input_ids)} tokens")
    for i, j in sample.pairs:
        if not 0 <= j < i < n:
            raise ValueError(f"{where}: pair ({i}, {j}) is not 0 <= j < i < {n}")
    return sample


def read_samples(path: str, limit: Optional[int] = None) -> List[Sample]:
    """The samples of a `longdep bench --write-samples` file, in file order (at most `limit`)."""
    out: List[Sample] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if line.strip():
                out.append(parse_sample(line, f"{path} line {number}"))
    return out


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for k in range(0, len(items), size):
        yield items[k:k + size]


def median(values: Sequence[float]) -> float:
    v = sorted(values)
    if not v:
        return math.nan
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else 0.5 * (v[mid - 1] + v[mid])


def pearson(x: Sequence[Optional[float]], y: Sequence[Optional[float]]) -> float:
    """Pearson's r over the pairs where both are finite numbers; NaN when undefined."""
    pts = [(a, b) for a, b in zip(x, y)
           if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if len(pts) < 2:
        return math.nan
    mx = sum(a for a, _ in pts) / len(pts)
    my = sum(b for _, b in pts) / len(pts)
    sxy = sum((a - mx) * (b - my) for a, b in pts)
    sxx = sum((a - mx) ** 2 for a, _ in pts)
    syy = sum((b - my) ** 2 for _, b in pts)
    if sxx == 0 or syy == 0:
        return math.nan
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def finite_or_none(v: float) -> Optional[float]:
    """JSON has no NaN: a score that is not a finite number is written as null (SPEC's numeric_error)."""
    return v if v is not None and math.isfinite(v) else None
