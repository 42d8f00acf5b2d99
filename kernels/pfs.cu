// LADM PFS (SPEC §2), fused: the span's attention matrix over keys [0, start) is never stored.
//
// For one layer and every span sp (query rows [start, end), keys s in [0, start)):
//   P_h[t, s] = softmax over s of (q[t, h] . k[s, g(h)]) * scale        g(h) = h / (heads / kvHeads)
//   col[sp, s] = (1 / heads) * sum over h, t of P_h[t, s]
//   PFS(item)  = sum of col[sp, s] for s in [lo, hi)                    (lo = start - iv, hi = end - iv)
// in three launches:
//   pfs_row_stats    pass 1: per (span, head, row) the softmax max and sum (online, like attention)
//   pfs_column_mass  pass 2: per key column, the probability mass over the span's rows and heads
//   pfs_window_sum   per (span, interval) item, the window sum of col, in float64
//
// q [T, heads * headDim], k [T, kvHeads * headDim]: post-RoPE float32, the whole sample.
// rowMax, rowSum: [nSpans][heads][maxSpanLen]. col: [nSpans][T], zeroed by the host first
// (pfs_column_mass writes only s < start). headDim must be even and at most 256.
// tileList, tileStride (pass 2; tileList may be null): the 16-key tiles of each span whose columns pass 2 computes
// (longdep::pfs_tile_count / pfs_tile): the PFS windows read only those, with LADM's defaults (128-key windows every 512
// keys) one column in four. A listed column is computed exactly as without the list; the others are not written.
// The model's score extras, as in attention.cu: window > 0 (row t sees key s only when t - s < window: a row of a span
// that sees none of the keys before the span has max -inf and sum 0 and adds nothing to any column), softCap > 0 (each
// scaled score z becomes softCap * tanh(z / softCap)). 0 for either: none.
#include "common.cuh"

namespace {
constexpr int kPfsWarps = 4;
constexpr int kPfsRowsPerWarp = 4;
constexpr int kPfsBlockRows = kPfsWarps * kPfsRowsPerWarp; // 16 query rows per block / per row tile
constexpr int kPfsBlockKeys = 32;                           // pass 1: one key per lane per tile
constexpr int kPfsColumnKeys = 64;                          // pass 2: key columns per block
constexpr int kPfsRowGroups = 4;                            // pass 2: 256 threads = 64 keys x 4 row groups
constexpr int kPfsRowsPerGroup = kPfsBlockRows / kPfsRowGroups;
}

// Pass 1. Launch: grid = (ceil(maxSpanLen / 16), heads, nSpans), block.x = 128,
// dynamic shared memory = (32 * (headDim + 1) + 16 * headDim) * 4 bytes.
extern "C" __global__ void pfs_row_stats(const float* q, const float* k, const int* spanStart, const int* spanEnd,
                                         float* rowMax, float* rowSum, int nSpans, int maxSpanLen, int heads,
                                         int kvHeads, int headDim, float scale, int window, float softCap)
{
    const int span = blockIdx.z;
    const int head = blockIdx.y;
    const int r0 = blockIdx.x * kPfsBlockRows;
    if (span >= nSpans || head >= heads) return;
    const int start = spanStart[span];
    const int len = spanEnd[span] - start;
    if (r0 >= len) return; // uniform per block

    const int d = headDim;
    const int kvHead = head / (heads / kvHeads);
    const size_t qStride = (size_t)heads * d;
    const size_t kStride = (size_t)kvHeads * d;

    float* ks = reinterpret_cast<float*>(longdep_dynamic_smem); // [32][d + 1]
    float* qs = ks + kPfsBlockKeys * (d + 1);                    // [16][d], pre-scaled

    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;

    for (int idx = threadIdx.x; idx < kPfsBlockRows * d; idx += blockDim.x)
    {
        const int r = idx / d;
        const int c = idx - r * d;
        const int row = r0 + r;
        qs[idx] = row < len ? q[(size_t)(start + row) * qStride + (size_t)head * d + c] * scale : 0.0f;
    }

    float m[kPfsRowsPerWarp];
    float l[kPfsRowsPerWarp];
#pragma unroll
    for (int i = 0; i < kPfsRowsPerWarp; ++i)
    {
        m[i] = longdep::neg_inf();
        l[i] = 0.0f;
    }
    // With a window the block's first row sees keys from start + r0 - window + 1 on; earlier tiles are all masked.
    const int keyFirst = window > 0 ? max(0, start + r0 - window + 1) / kPfsBlockKeys * kPfsBlockKeys : 0;
    const float capInv = softCap > 0.0f ? 1.0f / softCap : 0.0f;
    __syncthreads();

    for (int kb = keyFirst; kb < start; kb += kPfsBlockKeys)
    {
        for (int idx = threadIdx.x; idx < kPfsBlockKeys * d; idx += blockDim.x)
        {
            const int j = idx / d;
            const int c = idx - j * d;
            const int s = kb + j;
            ks[j * (d + 1) + c] = s < start ? k[(size_t)s * kStride + (size_t)kvHead * d + c] : 0.0f;
        }
        __syncthreads();

        float sc[kPfsRowsPerWarp];
#pragma unroll
        for (int i = 0; i < kPfsRowsPerWarp; ++i) sc[i] = 0.0f;
        const float* krow = ks + lane * (d + 1);
        for (int c = 0; c < d; ++c)
        {
            const float kc = krow[c];
#pragma unroll
            for (int i = 0; i < kPfsRowsPerWarp; ++i) sc[i] += qs[(warp * kPfsRowsPerWarp + i) * d + c] * kc;
        }

        const int s = kb + lane;
#pragma unroll
        for (int i = 0; i < kPfsRowsPerWarp; ++i)
        {
            const int row = r0 + warp * kPfsRowsPerWarp + i;
            const bool valid = row < len && s < start && (window <= 0 || s > start + row - window);
            const float z = softCap > 0.0f ? softCap * tanhf(sc[i] * capInv) : sc[i];
            const float score = valid ? z : longdep::neg_inf();
            const float mNew = fmaxf(m[i], longdep::warp_max(score));
            const float p = valid ? expf(score - mNew) : 0.0f;
            const float alpha = m[i] == longdep::neg_inf() ? 0.0f : expf(m[i] - mNew);
            l[i] = l[i] * alpha + longdep::warp_sum(p);
            m[i] = mNew;
        }
        __syncthreads();
    }

    if (lane == 0)
    {
#pragma unroll
        for (int i = 0; i < kPfsRowsPerWarp; ++i)
        {
            const int row = r0 + warp * kPfsRowsPerWarp + i;
            if (row >= len) continue;
            const size_t at = ((size_t)span * heads + head) * maxSpanLen + row;
            rowMax[at] = m[i];
            rowSum[at] = l[i];
        }
    }
}

// Pass 2. Launch: grid = (ceil(most tiles of a span / 4), nSpans) (without a list: ceil(maxStart / 64)), block.x = 256,
// dynamic shared memory = (64 * (headDim + 1) + 16 * headDim + 4 * 64) * 4 bytes.
// Each block owns 4 tiles (64 key columns) of one span's list and loops over every head and every row of the span,
// so col is written once, without atomics (deterministic).
extern "C" __global__ void pfs_column_mass(const float* q, const float* k, const int* spanStart, const int* spanEnd,
                                           const float* rowMax, const float* rowSum, float* col, const int* tileList,
                                           int tileStride, int nSpans, int maxSpanLen, int T, int heads, int kvHeads,
                                           int headDim, float scale, int window, float softCap)
{
    constexpr int kTiles = kPfsColumnKeys / longdep::kPfsKeyTile;
    const int span = blockIdx.y;
    if (span >= nSpans) return;
    const int start = spanStart[span];
    const int len = spanEnd[span] - start;
    const int count = longdep::pfs_tile_count(tileList, tileStride, span, start);
    const int p0 = blockIdx.x * kTiles;
    if (p0 >= count) return; // uniform per block
    // key column j of this block (0..63): -1 past the span's last tile
    auto keyOf = [&](int j) {
        const int pos = p0 + j / longdep::kPfsKeyTile;
        return pos < count ? longdep::pfs_tile(tileList, tileStride, span, pos) * longdep::kPfsKeyTile + j % longdep::kPfsKeyTile : -1;
    };

    const int d = headDim;
    const int group = heads / kvHeads;
    const size_t qStride = (size_t)heads * d;
    const size_t kStride = (size_t)kvHeads * d;

    float* ks = reinterpret_cast<float*>(longdep_dynamic_smem); // [64][d + 1]
    float* qs = ks + kPfsColumnKeys * (d + 1);                   // [16][d], pre-scaled
    float* partial = qs + kPfsBlockRows * d;                     // [4][64]

    const int keyIdx = threadIdx.x % kPfsColumnKeys;
    const int rowGroup = threadIdx.x / kPfsColumnKeys; // 0..3
    const int s = keyOf(keyIdx);
    const bool keyValid = s >= 0 && s < start;
    const float capInv = softCap > 0.0f ? 1.0f / softCap : 0.0f;
    float mass = 0.0f;

    for (int g = 0; g < kvHeads; ++g)
    {
        __syncthreads(); // every thread is done with the previous head's ks
        for (int idx = threadIdx.x; idx < kPfsColumnKeys * d; idx += blockDim.x)
        {
            const int j = idx / d;
            const int c = idx - j * d;
            const int key = keyOf(j);
            ks[j * (d + 1) + c] = key >= 0 && key < start ? k[(size_t)key * kStride + (size_t)g * d + c] : 0.0f;
        }
        for (int h = g * group; h < (g + 1) * group; ++h)
        {
            for (int rt = 0; rt < len; rt += kPfsBlockRows)
            {
                __syncthreads(); // qs is free (and ks is loaded)
                for (int idx = threadIdx.x; idx < kPfsBlockRows * d; idx += blockDim.x)
                {
                    const int r = idx / d;
                    const int c = idx - r * d;
                    const int row = rt + r;
                    qs[idx] = row < len ? q[(size_t)(start + row) * qStride + (size_t)h * d + c] * scale : 0.0f;
                }
                __syncthreads();

                float sc[kPfsRowsPerGroup];
#pragma unroll
                for (int i = 0; i < kPfsRowsPerGroup; ++i) sc[i] = 0.0f;
                const float* krow = ks + keyIdx * (d + 1);
                for (int c = 0; c < d; ++c)
                {
                    const float kc = krow[c];
#pragma unroll
                    for (int i = 0; i < kPfsRowsPerGroup; ++i)
                        sc[i] += qs[(rowGroup * kPfsRowsPerGroup + i) * d + c] * kc;
                }
#pragma unroll
                for (int i = 0; i < kPfsRowsPerGroup; ++i)
                {
                    const int row = rt + rowGroup * kPfsRowsPerGroup + i;
                    if (row < len && keyValid && (window <= 0 || s > start + row - window))
                    {
                        const size_t at = ((size_t)span * heads + h) * maxSpanLen + row;
                        const float z = softCap > 0.0f ? softCap * tanhf(sc[i] * capInv) : sc[i];
                        mass += expf(z - rowMax[at]) / rowSum[at];
                    }
                }
            }
        }
    }

    partial[rowGroup * kPfsColumnKeys + keyIdx] = mass;
    __syncthreads();
    if (rowGroup == 0 && keyValid)
    {
        float total = 0.0f;
#pragma unroll
        for (int g = 0; g < kPfsRowGroups; ++g) total += partial[g * kPfsColumnKeys + keyIdx];
        col[(size_t)span * T + s] = total / (float)heads;
    }
}

// Window sums. Launch: grid.x = ceil(nItems / 128), block.x = 128.
// pfs[i] = sum of col[itemSpan[i], s] for s in [itemLo[i], itemHi[i]) clipped to [0, T), in float64.
extern "C" __global__ void pfs_window_sum(const float* col, const int* itemSpan, const int* itemLo, const int* itemHi,
                                          double* pfs, int nItems, int T)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nItems) return;
    const float* c = col + (size_t)itemSpan[i] * T;
    const int lo = max(itemLo[i], 0);
    const int hi = min(itemHi[i], T);
    double total = 0.0;
    for (int s = lo; s < hi; ++s) total += (double)c[s];
    pfs[i] = total;
}
