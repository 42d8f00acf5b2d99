// LADM PFS passes 1 and 2 on tensor cores (mma.sync m16n8k16, f16 inputs, f32 accumulation): the same
// contracts as pfs_row_stats and pfs_column_mass in pfs.cu (buffers, rowMax in natural-log units,
// col written once per key without atomics), for head dimensions 64 and 128.
//
// Numerics: q * scale * log2(e) and k are rounded to f16; scores accumulate in float32; softmax in
// log2 units (exp2). Both passes round the same inputs the same way, so a row's probabilities still sum
// to 1 up to float32 accumulation.
//
// Sliding windows (window > 0, as in pfs.cu: row t sees key s only when t - s < window) are masked in both passes (but
// the wide pass 2, which the host runs only without one); pass 1 skips key tiles wholly before a block's earliest window
// and pass 2 the row tiles that see none of a warp's keys (an all-masked tile changes nothing). Soft-capped scores have no
// tensor-core form: the host runs such models on pfs.cu.
#include "mma.cuh"

namespace {
constexpr int kPfsTcRows = 64;      // pass 1: query rows per block (4 warps x 16)
constexpr int kPfsTcKeys = 64;      // pass 1: keys per shared tile
constexpr int kPfsTcColKeys = 128;  // pass 2: key columns per block (8 warps x 16)
constexpr int kPfsTcRowTile = 64;   // pass 2: query rows staged per step
constexpr int kPfsTcPad = 8;
}

// Pass 1's online statistics for one 64-key tile of scores (log2 units) of this thread's rows A (c0, c1) and B (c2, c3):
// keys at or past the span's start, and keys before a row's first visible key (firstA, firstB: its window's start, 0
// without a window), are masked when `mask` (a tile wholly before the start needs none without a window), then the
// running maxima and this thread's share of the row sums. Without a window every tile holds a key < start, so the maxima
// are finite; with one a row may see no key of a tile (or of the span): its maximum stays -inf and its sum 0.
__device__ __forceinline__ void pfs_stats_update(float (&sc)[kPfsTcKeys / 8][4], int kb, int start, bool mask, int firstA,
                                                 int firstB, float& mA, float& mB, float& lA, float& lB)
{
    const int tq = threadIdx.x & 3;
    float tileA = longdep::neg_inf(), tileB = longdep::neg_inf();
#pragma unroll
    for (int nt = 0; nt < kPfsTcKeys / 8; ++nt)
    {
#pragma unroll
        for (int e = 0; e < 2; ++e)
        {
            const int key = kb + nt * 8 + 2 * tq + e;
            if (mask && (key >= start || key < firstA)) sc[nt][e] = longdep::neg_inf();
            if (mask && (key >= start || key < firstB)) sc[nt][2 + e] = longdep::neg_inf();
            tileA = fmaxf(tileA, sc[nt][e]);
            tileB = fmaxf(tileB, sc[nt][2 + e]);
        }
    }
    const float mNewA = fmaxf(mA, longdep::quad_max(tileA));
    const float mNewB = fmaxf(mB, longdep::quad_max(tileB));
    const float baseA = mNewA == longdep::neg_inf() ? 0.0f : mNewA; // a row that has seen no key yet: exp2(-inf - 0) = 0
    const float baseB = mNewB == longdep::neg_inf() ? 0.0f : mNewB;
    lA *= exp2f(mA - baseA);
    lB *= exp2f(mB - baseB);
    mA = mNewA;
    mB = mNewB;
#pragma unroll
    for (int nt = 0; nt < kPfsTcKeys / 8; ++nt)
    {
        lA += exp2f(sc[nt][0] - baseA) + exp2f(sc[nt][1] - baseA);
        lB += exp2f(sc[nt][2] - baseB) + exp2f(sc[nt][3] - baseB);
    }
}

// Stages keys [kb, kb + 64) of one KV head (keys at or past `start` as zero) as f16 rows of ks [64][D + 8].
template <int D>
__device__ __forceinline__ void pfs_stage_keys(__half* ks, const float* __restrict__ k, int kb, int start, size_t kStride, int kvHead)
{
    for (int idx = threadIdx.x; idx < kPfsTcKeys * (D / 2); idx += blockDim.x)
    {
        const int j = idx / (D / 2);
        const int c = (idx - j * (D / 2)) * 2;
        const int s = kb + j;
        float2 kv = make_float2(0.0f, 0.0f);
        if (s < start) kv = *reinterpret_cast<const float2*>(k + (size_t)s * kStride + (size_t)kvHead * D + c);
        *reinterpret_cast<uint32_t*>(ks + j * (D + kPfsTcPad) + c) = longdep::pack_half2(kv.x, kv.y);
    }
}

// Pass 1's result for rows A and B of this thread: the quad's row sums, the maxima in natural-log units (rows past the
// span are not written).
__device__ __forceinline__ void pfs_store_stats(float* rowMax, float* rowSum, size_t at, int rowA, int rowB, int len, float mA,
                                                float mB, float lA, float lB)
{
    lA = longdep::quad_sum(lA);
    lB = longdep::quad_sum(lB);
    if ((threadIdx.x & 3) == 0)
    {
        if (rowA < len)
        {
            rowMax[at + rowA] = mA * longdep::kLn2;
            rowSum[at + rowA] = lA;
        }
        if (rowB < len)
        {
            rowMax[at + rowB] = mB * longdep::kLn2;
            rowSum[at + rowB] = lB;
        }
    }
}

// Pass 1. M is the number of 16-row tiles per warp: 1 (pfs_row_stats_mma*), or 2 for the wide kernel (head dimension
// 64, 128-row blocks: a 128-token span in one block, each key tile staged once per span and head instead of twice, and
// every K fragment read from shared memory (ldmatrix) feeding two products). Per row the same products and updates in
// the same order either way, so the statistics are the same.
// Launch: grid = (ceil(maxSpanLen / (64 M)), heads, nSpans), block.x = 128, dynamic shared memory = 64 * (D + 8) * 2 bytes.
template <int D, int M>
__device__ __forceinline__ void pfs_row_stats_mma_impl(const float* __restrict__ q, const float* __restrict__ k,
                                                       const int* spanStart, const int* spanEnd, float* rowMax,
                                                       float* rowSum, int nSpans, int maxSpanLen, int heads,
                                                       int kvHeads, float scale, int window)
{
    static_assert(M == 1 || M == 2, "one or two 16-row tiles per warp");
    const int span = blockIdx.z;
    const int head = blockIdx.y;
    const int r0 = blockIdx.x * kPfsTcRows * M;
    if (span >= nSpans || head >= heads) return;
    const int start = spanStart[span];
    const int len = spanEnd[span] - start;
    if (r0 >= len) return; // uniform per block (a span at start 0 gets max -inf and sum 0, as in pfs.cu)

    const int kvHead = head / (heads / kvHeads);
    const size_t qStride = (size_t)heads * D;
    const size_t kStride = (size_t)kvHeads * D;
    __half* ks = reinterpret_cast<__half*>(longdep_dynamic_smem); // [64][D + 8]

    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int tq = lane & 3;
    const int warpRow0 = r0 + warp * 16 * M; // rows within the span
    const bool active = warpRow0 < len;      // uniform per warp: a warp past the span's end only stages keys

    uint32_t qa[M][D / 16][4];
    float mA[M], mB[M], lA[M], lB[M];
#pragma unroll
    for (int m = 0; m < M; ++m)
    {
        const int rowA = warpRow0 + 16 * m + g;
        const float* qA = q + (size_t)(start + min(rowA, len - 1)) * qStride + (size_t)head * D;
        const float* qB = q + (size_t)(start + min(rowA + 8, len - 1)) * qStride + (size_t)head * D;
        longdep::load_a_fragments<D>(qA, qB, scale * longdep::kLog2e, qa[m]);
        mA[m] = mB[m] = longdep::neg_inf();
        lA[m] = lB[m] = 0.0f;
    }
    // With a window the block's first row sees keys from start + r0 - window + 1 on: earlier tiles are all masked.
    const int keyFirst = window > 0 ? max(0, start + r0 - window + 1) / kPfsTcKeys * kPfsTcKeys : 0;
    for (int kb = keyFirst; kb < start; kb += kPfsTcKeys)
    {
        __syncthreads();
        pfs_stage_keys<D>(ks, k, kb, start, kStride, kvHead);
        __syncthreads();
        if (!active) continue;

        float sc[M][kPfsTcKeys / 8][4];
        if constexpr (M == 1)
        {
#pragma unroll
            for (int nt = 0; nt < kPfsTcKeys / 8; ++nt)
            {
                sc[0][nt][0] = sc[0][nt][1] = sc[0][nt][2] = sc[0][nt][3] = 0.0f;
                const __half* kr = ks + (nt * 8 + g) * (D + kPfsTcPad) + 2 * tq;
#pragma unroll
                for (int kk = 0; kk < D / 16; ++kk)
                    longdep::mma_16816(sc[0][nt], qa[0][kk], longdep::lds_pair(kr, kk * 16), longdep::lds_pair(kr, kk * 16 + 8));
            }
        }
        else
        {
            static_assert(kPfsTcKeys == 64 && kPfsTcPad == 8, "scores_two_tiles takes 64-key tiles padded by 8");
            longdep::scores_two_tiles<D>(ks, qa, sc); // every K fragment read once (ldmatrix.x4) for both row tiles
        }
        // without a window only the tile holding the span's start has keys to mask
        const bool mask = kb + kPfsTcKeys > start || window > 0;
#pragma unroll
        for (int m = 0; m < M; ++m)
        {
            const int rowA = start + warpRow0 + 16 * m + g; // this thread's rows in the sample
            pfs_stats_update(sc[m], kb, start, mask, window > 0 ? rowA - window + 1 : 0, window > 0 ? rowA + 8 - window + 1 : 0,
                             mA[m], mB[m], lA[m], lB[m]);
        }
    }
    if (!active) return;
#pragma unroll
    for (int m = 0; m < M; ++m)
    {
        const int rowA = warpRow0 + 16 * m + g;
        pfs_store_stats(rowMax, rowSum, ((size_t)span * heads + head) * maxSpanLen, rowA, rowA + 8, len, mA[m], mB[m], lA[m],
                        lB[m]);
    }
}

// ---- Pass 1 from the packed f16 keys (kv_pack_f16's k16, which the layer's attention reads too) ----

// Issues the cp.async copies of keys [kb, kb + 64) of one KV head into ks [64][D + 8], 16 bytes (8 halves) per copy;
// Threads = block.x. Keys at or past a span's start are copied as they are: the statistics mask them.
template <int D, int Threads>
__device__ __forceinline__ void pfs_stage_keys_kv16(__half* ks, const __half* kBase, int kb, size_t kvStride)
{
    static_assert(kPfsTcKeys * (D / 8) % Threads == 0, "whole copy rounds");
#pragma unroll 1
    for (int idx = threadIdx.x; idx < kPfsTcKeys * (D / 8); idx += Threads)
    {
        const int j = idx / (D / 8);
        const int c = (idx - j * (D / 8)) * 8;
        longdep::cp_async16(ks + j * (D + kPfsTcPad) + c, kBase + (size_t)(kb + j) * kvStride + c);
    }
}

// Pass 1 of the wide kernel (32 span rows per warp, 128-row blocks per head) reading k16 [paddedLen][kvHeads * D]
// (one sequence, kv_pack_f16's layout) with cp.async, two stages: the next key tile is in flight while the current
// one is multiplied, and a tile is half the bytes of pfs_row_stats_mma64_wide's float32 keys. Warps / 4 heads of one
// GQA group share the block (8 warps: two heads, each staged tile serving twice the rows). Per row the same products
// and updates in the same order as pfs_row_stats_mma64_wide (which rounds k to f16 as kv_pack_f16 does, and zeroes
// the keys that the mask then sets to -inf anyway), so the statistics are the same.
// Launch: grid = (ceil(maxSpanLen / 128), heads / (Warps / 4), nSpans), block.x = 32 Warps, dynamic shared memory =
// 2 * 64 * (D + 8) * 2 bytes; (heads / kvHeads) a multiple of Warps / 4; k16 16-byte aligned, paddedLen >= every start.
template <int D, int Warps>
__device__ __forceinline__ void pfs_row_stats_kv16_impl(const float* __restrict__ q, const __half* __restrict__ k16,
                                                        const int* spanStart, const int* spanEnd, float* rowMax,
                                                        float* rowSum, int nSpans, int maxSpanLen, int heads,
                                                        int kvHeads, float scale, int window)
{
    static_assert(Warps == 4 || Warps == 8, "one head (4 warps) or two (8 warps) per block");
    constexpr int M = 2;
    constexpr int kHeadsPerBlock = Warps / 4;
    const int span = blockIdx.z;
    const int warp = threadIdx.x >> 5;
    const int head0 = blockIdx.y * kHeadsPerBlock;
    const int head = head0 + warp / 4;
    const int r0 = blockIdx.x * kPfsTcRows * M;
    if (span >= nSpans || head0 >= heads) return; // uniform per block
    const int start = spanStart[span];
    const int len = spanEnd[span] - start;
    if (r0 >= len) return; // uniform per block (a span at start 0 gets max -inf and sum 0, as in pfs.cu)

    const int kvHead = head0 / (heads / kvHeads); // the block's heads share it
    const size_t qStride = (size_t)heads * D;
    const size_t kvStride = (size_t)kvHeads * D;
    const __half* kBase = k16 + (size_t)kvHead * D;
    constexpr int kStage = kPfsTcKeys * (D + kPfsTcPad); // halves per stage
    __half* smem = reinterpret_cast<__half*>(longdep_dynamic_smem);

    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int warpRow0 = r0 + (warp & 3) * 16 * M; // rows within the span
    const bool active = warpRow0 < len && head < heads; // uniform per warp: others only stage keys

    uint32_t qa[M][D / 16][4];
    float mA[M], mB[M], lA[M], lB[M];
#pragma unroll
    for (int m = 0; m < M; ++m)
    {
        const int rowA = warpRow0 + 16 * m + g;
        const int h = min(head, heads - 1);
        const float* qA = q + (size_t)(start + min(rowA, len - 1)) * qStride + (size_t)h * D;
        const float* qB = q + (size_t)(start + min(rowA + 8, len - 1)) * qStride + (size_t)h * D;
        longdep::load_a_fragments<D>(qA, qB, scale * longdep::kLog2e, qa[m]);
        mA[m] = mB[m] = longdep::neg_inf();
        lA[m] = lB[m] = 0.0f;
    }
    const int tiles = (start + kPfsTcKeys - 1) / kPfsTcKeys;
    // With a window the block's first row sees keys from start + r0 - window + 1 on: earlier tiles are all masked.
    const int first = window > 0 ? min(tiles, max(0, start + r0 - window + 1) / kPfsTcKeys) : 0;
    if (first < tiles) pfs_stage_keys_kv16<D, 32 * Warps>(smem + (first & 1) * kStage, kBase, first * kPfsTcKeys, kvStride);
    longdep::cp_async_commit();
    for (int i = first; i < tiles; ++i)
    {
        if (i + 1 < tiles) pfs_stage_keys_kv16<D, 32 * Warps>(smem + ((i + 1) & 1) * kStage, kBase, (i + 1) * kPfsTcKeys, kvStride);
        longdep::cp_async_commit();
        longdep::cp_async_wait<1>(); // tile i has landed (only tile i + 1's copies may be in flight)
        __syncthreads();
        if (active)
        {
            const int kb = i * kPfsTcKeys;
            float sc[M][kPfsTcKeys / 8][4];
            longdep::scores_two_tiles<D>(smem + (i & 1) * kStage, qa, sc);
            // without a window only the tile holding the span's start has keys to mask
            const bool mask = kb + kPfsTcKeys > start || window > 0;
#pragma unroll
            for (int m = 0; m < M; ++m)
            {
                const int rowA = start + warpRow0 + 16 * m + g; // this thread's rows in the sample
                pfs_stats_update(sc[m], kb, start, mask, window > 0 ? rowA - window + 1 : 0,
                                 window > 0 ? rowA + 8 - window + 1 : 0, mA[m], mB[m], lA[m], lB[m]);
            }
        }
        __syncthreads(); // the next iteration's copies overwrite this stage
    }
    longdep::cp_async_wait<0>();
    if (!active) return;
#pragma unroll
    for (int m = 0; m < M; ++m)
    {
        const int rowA = warpRow0 + 16 * m + g;
        pfs_store_stats(rowMax, rowSum, ((size_t)span * heads + head) * maxSpanLen, rowA, rowA + 8, len, mA[m], mB[m], lA[m],
                        lB[m]);
    }
}

// Pass 2: stages query rows [rt, rt + 64) of one head of the span (q * scale * log2 e as f16 rows of qs [64][D + 8]) with
// their softmax statistics (rm: row max in log2 units, ri: 1 / row sum; rows past the span get 0 and 0).
template <int D>
__device__ __forceinline__ void pfs_stage_queries(__half* qs, float* rm, float* ri, const float* __restrict__ q,
                                                  const float* rowMax, const float* rowSum, int start, int rt, int len,
                                                  size_t statAt, size_t qStride, int h, float qScale)
{
    for (int idx = threadIdx.x; idx < kPfsTcRowTile * (D / 2); idx += blockDim.x)
    {
        const int r = idx / (D / 2);
        const int c = (idx - r * (D / 2)) * 2;
        float2 qv = make_float2(0.0f, 0.0f);
        if (rt + r < len) qv = *reinterpret_cast<const float2*>(q + (size_t)(start + rt + r) * qStride + (size_t)h * D + c);
        *reinterpret_cast<uint32_t*>(qs + r * (D + kPfsTcPad) + c) = longdep::pack_half2(qv.x * qScale, qv.y * qScale);
    }
    if (threadIdx.x < kPfsTcRowTile)
    {
        const int r = rt + threadIdx.x;
        // Rows past the span: score 0 - 0 gives exp2 = 1, times 0.
        rm[threadIdx.x] = r < len ? rowMax[statAt + r] * longdep::kLog2e : 0.0f;
        ri[threadIdx.x] = r < len ? 1.0f / rowSum[statAt + r] : 0.0f;
    }
}

// Pass 2: adds the probabilities of S^T's accumulator tile (c0 = (keyA, row r), c1 = (keyA, r + 1), c2 = (keyB, r),
// c3 = (keyB, r + 1), r = staged row) to this thread's key columns A and B.
__device__ __forceinline__ void pfs_mass_accumulate(const float (&acc)[4], const float* rm, const float* ri, int r, float& colA,
                                                    float& colB)
{
    colA += exp2f(acc[0] - rm[r]) * ri[r] + exp2f(acc[1] - rm[r + 1]) * ri[r + 1];
    colB += exp2f(acc[2] - rm[r]) * ri[r] + exp2f(acc[3] - rm[r + 1]) * ri[r + 1];
}

// The same with a sliding window: only staged rows below limA see key A (limB: key B); the rest add nothing (a row that
// sees none of the span's keys has statistics -inf and 1 / 0: not read).
__device__ __forceinline__ void pfs_mass_accumulate(const float (&acc)[4], const float* rm, const float* ri, int r, int limA,
                                                    int limB, float& colA, float& colB)
{
    colA += (r < limA ? exp2f(acc[0] - rm[r]) * ri[r] : 0.0f) + (r + 1 < limA ? exp2f(acc[1] - rm[r + 1]) * ri[r + 1] : 0.0f);
    colB += (r < limB ? exp2f(acc[2] - rm[r]) * ri[r] : 0.0f) + (r + 1 < limB ? exp2f(acc[3] - rm[r + 1]) * ri[r + 1] : 0.0f);
}

// Pass 2's result for key columns A and B of this thread: the quad's sums, averaged over heads (keys at or past the
// span's start are not written).
__device__ __forceinline__ void pfs_store_columns(float* col, size_t at, int keyA, int keyB, int start, int heads, float colA,
                                                  float colB)
{
    colA = longdep::quad_sum(colA);
    colB = longdep::quad_sum(colB);
    if ((threadIdx.x & 3) == 0)
    {
        const float invHeads = 1.0f / (float)heads;
        if (keyA < start) col[at + keyA] = colA * invHeads;
        if (keyB < start) col[at + keyB] = colB * invHeads;
    }
}

// Pass 2. M is the number of 16-key tiles per warp: 1 (pfs_column_mass_mma*), or 2 for the wide kernel (head
// dimension 64, 256 keys a block: each staged query tile serves twice the keys, and every Q fragment read from shared
// memory (ldmatrix) feeds two products). Each warp owns 16 M key columns, kept in registers as the A operand of
// S^T = K.Q^T; the block stages 64 query rows of one head at a time (with their softmax statistics) and every warp
// sweeps them. Per key the mass sums over rows in a fixed order and over the quad at the end: deterministic, and the
// same for either M.
// The block takes the span's listed key tiles (pfs.cu: tileList) 8 M at a time, warp w tiles 8 M b + M w ...; a warp
// past the span's last tile only helps stage the query rows.
// Windowed: whether the kernel takes a sliding window (window > 0); without, the row limits are not compiled at all.
// Launch: grid = (ceil(most tiles of a span / (8 M)), nSpans) (without a list: ceil(maxStart / (128 M))), block.x = 256,
// dynamic shared memory = (64 * (D + 8) * 2 + 2 * 64 * 4) bytes.
template <int D, int M, bool Windowed>
__device__ __forceinline__ void pfs_column_mass_mma_impl(const float* __restrict__ q, const float* __restrict__ k,
                                                         const int* spanStart, const int* spanEnd,
                                                         const float* rowMax, const float* rowSum, float* col,
                                                         const int* tileList, int tileStride, int nSpans, int maxSpanLen,
                                                         int T, int heads, int kvHeads, float scale, int window)
{
    static_assert(M == 1 || M == 2, "one or two 16-key tiles per warp");
    static_assert(longdep::kPfsKeyTile == 16, "a warp's key tile is one listed tile");
    const int span = blockIdx.y;
    if (span >= nSpans) return;
    const int start = spanStart[span];
    const int len = spanEnd[span] - start;
    const int count = longdep::pfs_tile_count(tileList, tileStride, span, start);
    if ((int)blockIdx.x * 8 * M >= count) return; // uniform per block

    const int group = heads / kvHeads;
    const size_t qStride = (size_t)heads * D;
    const size_t kStride = (size_t)kvHeads * D;
    const float qScale = scale * longdep::kLog2e;

    __half* qs = reinterpret_cast<__half*>(longdep_dynamic_smem);                   // [64][D + 8]
    float* rm = reinterpret_cast<float*>(qs + kPfsTcRowTile * (D + kPfsTcPad));       // [64] row max, log2 units
    float* ri = rm + kPfsTcRowTile;                                                   // [64] 1 / row sum

    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int tq = lane & 3;
    const int pos0 = (blockIdx.x * 8 + warp) * M;  // this warp's first position in the span's tile list
    const bool active = pos0 < count;              // uniform per warp: a warp past the last tile only stages rows
    // the warp's key tiles (a position past the list repeats the first tile: computed, not written)
    int tile[M];
#pragma unroll
    for (int m = 0; m < M; ++m) tile[m] = longdep::pfs_tile(tileList, tileStride, span, pos0 + m < count ? pos0 + m : min(pos0, count - 1));
    float colA[M], colB[M];
#pragma unroll
    for (int m = 0; m < M; ++m) colA[m] = colB[m] = 0.0f;
    // With a window, row start + rt + r of the span sees key s only when start + rt + r < s + window: staged row r sees
    // key s when r < s + shift, shift = window - start - rt (without a window shift is 2^30: every row sees every key; the
    // host keeps windows below 2^28, so these sums stay in range). Recomputed per row tile rather than kept per key: the
    // wide kernel's registers are at the limit of 3 blocks an SM.
    constexpr int kEveryRow = 1 << 30;

    for (int kvh = 0; kvh < kvHeads; ++kvh)
    {
        // This warp's keys as A fragments (keys past the span's start are zero and not written).
        uint32_t ka[M][D / 16][4];
#pragma unroll
        for (int m = 0; m < M; ++m)
        {
            const int keyA = 16 * tile[m] + g;
            const float* kA = k + (size_t)min(keyA, start - 1) * kStride + (size_t)kvh * D;
            const float* kB = k + (size_t)min(keyA + 8, start - 1) * kStride + (size_t)kvh * D;
            longdep::load_a_fragments<D>(kA, kB, 1.0f, ka[m]);
        }
        for (int h = kvh * group; h < (kvh + 1) * group; ++h)
        {
            const size_t statAt = ((size_t)span * heads + h) * maxSpanLen;
            for (int rt = 0; rt < len; rt += kPfsTcRowTile)
            {
                __syncthreads(); // the previous row tile is consumed
                pfs_stage_queries<D>(qs, rm, ri, q, rowMax, rowSum, start, rt, len, statAt, qStride, h, qScale);
                __syncthreads();
                const int shift = Windowed && window > 0 ? window - start - rt : kEveryRow;
                if (!active) continue;
                // uniform per warp: no staged row sees the warp's keys (its last is 16 max(tile) + 15)
                if (Windowed && 16 * max(tile[0], tile[M - 1]) + 15 + shift <= 0) continue;

                const int rows = min(kPfsTcRowTile, len - rt);
#pragma unroll 2
                for (int nr = 0; nr < kPfsTcRowTile / 8; ++nr)
                {
                    if (nr * 8 >= rows) break; // uniform
                    // acc[m]: c0 = (keyA, row r), c1 = (keyA, row r + 1), c2 = (keyB, r), c3 = (keyB, r + 1).
                    float acc[M][4];
#pragma unroll
                    for (int m = 0; m < M; ++m) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;
                    if constexpr (M == 1)
                    {
                        const __half* qr = qs + (nr * 8 + g) * (D + kPfsTcPad) + 2 * tq;
#pragma unroll
                        for (int kk = 0; kk < D / 16; ++kk)
                            longdep::mma_16816(acc[0], ka[0][kk], longdep::lds_pair(qr, kk * 16), longdep::lds_pair(qr, kk * 16 + 8));
                    }
                    else
                    {
                        // One ldmatrix.x4 (matrices: rows nr*8.. at dims 16kk.., 16kk+8.., 16kk+16.., 16kk+24..) gives b0, b1 of
                        // dimension blocks kk and kk + 1 for both key tiles.
                        const __half* qr = qs + (nr * 8 + (lane & 7)) * (D + kPfsTcPad) + (lane >> 3) * 8;
#pragma unroll
                        for (int kk = 0; kk < D / 16; kk += 2)
                        {
                            uint32_t b[4];
                            longdep::ldsm_x4(b, qr + kk * 16);
#pragma unroll
                            for (int m = 0; m < M; ++m)
                            {
                                longdep::mma_16816(acc[m], ka[m][kk], b[0], b[1]);
                                longdep::mma_16816(acc[m], ka[m][kk + 1], b[2], b[3]);
                            }
                        }
                    }
#pragma unroll
                    for (int m = 0; m < M; ++m)
                    {
                        if constexpr (Windowed)
                            pfs_mass_accumulate(acc[m], rm, ri, nr * 8 + 2 * tq, 16 * tile[m] + g + shift, 16 * tile[m] + g + 8 + shift,
                                                colA[m], colB[m]);
                        else
                            pfs_mass_accumulate(acc[m], rm, ri, nr * 8 + 2 * tq, colA[m], colB[m]);
                    }
                }
            }
        }
    }
    if (!active) return;
#pragma unroll
    for (int m = 0; m < M; ++m)
    {
        if (pos0 + m >= count) continue; // uniform per warp
        const int keyA = 16 * tile[m] + g;
        pfs_store_columns(col, (size_t)span * T, keyA, keyA + 8, start, heads, colA[m], colB[m]);
    }
}

// The parameters of pfs_row_stats / pfs_column_mass without softCap; headDim must equal the kernel's D (the host checks it).
extern "C" __global__ __launch_bounds__(128) void pfs_row_stats_mma64(
    const float* q, const float* k, const int* spanStart, const int* spanEnd, float* rowMax, float* rowSum, int nSpans,
    int maxSpanLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    pfs_row_stats_mma_impl<64, 1>(q, k, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, scale, window);
}

// As pfs_row_stats_mma64, launched on grid (ceil(maxSpanLen / 128), heads, nSpans).
extern "C" __global__ __launch_bounds__(128) void pfs_row_stats_mma64_wide(
    const float* q, const float* k, const int* spanStart, const int* spanEnd, float* rowMax, float* rowSum, int nSpans,
    int maxSpanLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    pfs_row_stats_mma_impl<64, 2>(q, k, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, scale, window);
}

// Pass 1 from packed keys: (q, k16, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, headDim,
// scale, window), as pfs_row_stats_mma64_wide but with kv_pack_f16's k16 (one sequence) in place of k; 4 warps, one head a block.
extern "C" __global__ __launch_bounds__(128) void pfs_row_stats_mma64_kv16_wide(
    const float* q, const __half* k16, const int* spanStart, const int* spanEnd, float* rowMax, float* rowSum, int nSpans,
    int maxSpanLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    pfs_row_stats_kv16_impl<64, 4>(q, k16, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, scale, window);
}

// As pfs_row_stats_mma64_kv16_wide with 8 warps: two heads of one GQA group a block, grid.y = heads / 2.
extern "C" __global__ __launch_bounds__(256) void pfs_row_stats_mma64_kv16_wide8(
    const float* q, const __half* k16, const int* spanStart, const int* spanEnd, float* rowMax, float* rowSum, int nSpans,
    int maxSpanLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    pfs_row_stats_kv16_impl<64, 8>(q, k16, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(256) void pfs_column_mass_mma64(
    const float* q, const float* k, const int* spanStart, const int* spanEnd, const float* rowMax, const float* rowSum,
    float* col, const int* tileList, int tileStride, int nSpans, int maxSpanLen, int T, int heads, int kvHeads, int headDim,
    float scale, int window)
{
    if (headDim != 64) return;
    pfs_column_mass_mma_impl<64, 1, true>(q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, tileStride, nSpans, maxSpanLen, T,
                                         heads, kvHeads, scale, window);
}

// As pfs_column_mass_mma64 without a window, launched on grid (ceil(maxStart / 256), nSpans): the window's per-key row
// limits would take this kernel past 80 registers (3 blocks an SM); a windowed layer's pass 2 runs pfs_column_mass_mma64.
extern "C" __global__ __launch_bounds__(256) void pfs_column_mass_mma64_wide(
    const float* q, const float* k, const int* spanStart, const int* spanEnd, const float* rowMax, const float* rowSum,
    float* col, const int* tileList, int tileStride, int nSpans, int maxSpanLen, int T, int heads, int kvHeads, int headDim,
    float scale)
{
    if (headDim != 64) return;
    pfs_column_mass_mma_impl<64, 2, false>(q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, tileStride, nSpans, maxSpanLen, T,
                                         heads, kvHeads, scale, 0);
}

extern "C" __global__ __launch_bounds__(128) void pfs_row_stats_mma128(
    const float* q, const float* k, const int* spanStart, const int* spanEnd, float* rowMax, float* rowSum, int nSpans,
    int maxSpanLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    pfs_row_stats_mma_impl<128, 1>(q, k, spanStart, spanEnd, rowMax, rowSum, nSpans, maxSpanLen, heads, kvHeads, scale, window);
}

// At most 85 registers (3 blocks of 256 threads an SM): without the bound ptxas takes 90 and fits 2 (80 suffice, no spills).
extern "C" __global__ __launch_bounds__(256, 3) void pfs_column_mass_mma128(
    const float* q, const float* k, const int* spanStart, const int* spanEnd, const float* rowMax, const float* rowSum,
    float* col, const int* tileList, int tileStride, int nSpans, int maxSpanLen, int T, int heads, int kvHeads, int headDim,
    float scale, int window)
{
    if (headDim != 128) return;
    pfs_column_mass_mma_impl<128, 1, true>(q, k, spanStart, spanEnd, rowMax, rowSum, col, tileList, tileStride, nSpans, maxSpanLen, T,
                                         heads, kvHeads, scale, window);
}
