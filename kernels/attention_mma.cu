// Causal grouped-query attention on tensor cores (mma.sync m16n8k16, f16 inputs, f32 accumulation):
// the same contract as attention.cu (batch layout, prefix keys, output type), for head dimensions 64 and
// 128. Flash-attention style: one warp owns 16 query rows, Q stays in registers as A fragments, each
// 64-key tile of K and V is staged in shared memory as f16, S = Q.K^T and O += P.V run on tensor cores
// with the online softmax in log2 units (scores pre-scaled by log2 e, exp2), P reused from the S
// accumulators as the A fragment of P.V without leaving registers.
//
// Numerics: q * scale * log2(e), k and v are rounded to f16 and P to f16 before P.V; the row sums,
// maxima and O accumulate in float32. The self-test compares against the float64-accumulating twin with
// f16-rounded inputs.
//
// Sliding windows (window > 0, as in attention.cu: row t sees key kk only when prefixLen + t - kk < window) are masked here
// too, and key tiles wholly before a block's (or, in the wide kernels, a warp's) earliest window are skipped: a tile in
// which every key is masked changes neither O nor the row sums, so the outputs are those of the masked full loop.
// Soft-capped scores (Gemma 2) have no tensor-core form: the host runs such models on the scalar kernels.
//
// Launch: grid = (ceil(seqLen / 64), heads, nSeq), block.x = 128 (4 warps x 16 rows),
//         dynamic shared memory = attention_mma_smem_bytes(D) = (64 * (D + 8) + D * 72) * 2 bytes.
//         Blocks run the longest (latest) query tiles first. q, k, v, kPrefix, vPrefix 8-byte aligned.
#include "mma.cuh"

namespace {
constexpr int kTcRows = 64;  // query rows per block (4 warps x 16)
constexpr int kTcKeys = 64;  // keys per tile
constexpr int kTcPad = 8;    // f16 padding per shared row: fragment reads hit 32 distinct banks
constexpr int kTcVtStride = kTcKeys + kTcPad;
}

// The online-softmax state of this thread's two rows (A = row g, B = row g + 8 of the warp's 16): running maxima in
// log2 units and this thread's share of the row sums (summed over the quad at the end).
struct RowState
{
    float mA = longdep::neg_inf(), mB = longdep::neg_inf();
    float lA = 0.0f, lB = 0.0f;
};

// The start of a warp's 16 rows: Q (rows A and B of this thread; rows past the sequence read its last row and are
// never written) as A fragments in log2 units, and O = 0.
template <int D>
__device__ __forceinline__ void attention_mma_begin(const float* q, size_t seqRow0, int rowA, int rowB, int seqLen,
                                                    size_t qStride, int head, float scale, uint32_t (&qa)[D / 16][4],
                                                    float (&o)[D / 8][4])
{
    const float* qA = q + (seqRow0 + min(rowA, seqLen - 1)) * qStride + (size_t)head * D;
    const float* qB = q + (seqRow0 + min(rowB, seqLen - 1)) * qStride + (size_t)head * D;
    longdep::load_a_fragments<D>(qA, qB, scale * longdep::kLog2e, qa);
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
}

// The causal, window and end-of-keys mask of one 64-key tile of scores (key kb + j is visible to row r when
// kb + j < keyCount, kb + j <= prefixLen + r and, with a window, kb + j > prefixLen + r - window) for this thread's
// rows A (c0, c1) and B (c2, c3).
__device__ __forceinline__ void attention_mask(float (&s)[kTcKeys / 8][4], int kb, int keyCount, int prefixLen, int rowA,
                                               int rowB, int window)
{
    const int tq = threadIdx.x & 3;
    // first visible key of rows A and B (0 without a window)
    const int firstA = window > 0 ? prefixLen + rowA - window + 1 : 0;
    const int firstB = window > 0 ? prefixLen + rowB - window + 1 : 0;
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt)
    {
#pragma unroll
        for (int e = 0; e < 2; ++e)
        {
            const int key = kb + nt * 8 + 2 * tq + e;
            if (key >= keyCount || key > prefixLen + rowA || key < firstA) s[nt][e] = longdep::neg_inf();
            if (key >= keyCount || key > prefixLen + rowB || key < firstB) s[nt][2 + e] = longdep::neg_inf();
        }
    }
}

// The online softmax of one tile of 16 rows: new maxima, O and the row sums rescaled, the scores replaced by their
// exp2 (the P of P.V, still float32).
template <int D>
__device__ __forceinline__ void attention_softmax(float (&s)[kTcKeys / 8][4], float (&o)[D / 8][4], RowState& st)
{
    float tileA = longdep::neg_inf(), tileB = longdep::neg_inf();
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt)
    {
        tileA = fmaxf(tileA, fmaxf(s[nt][0], s[nt][1]));
        tileB = fmaxf(tileB, fmaxf(s[nt][2], s[nt][3]));
    }
    const float mNewA = fmaxf(st.mA, longdep::quad_max(tileA));
    const float mNewB = fmaxf(st.mB, longdep::quad_max(tileB));
    const float baseA = mNewA == longdep::neg_inf() ? 0.0f : mNewA; // exp2(-inf - 0) = 0
    const float baseB = mNewB == longdep::neg_inf() ? 0.0f : mNewB;
    const float alphaA = exp2f(st.mA - baseA);
    const float alphaB = exp2f(st.mB - baseB);
    st.mA = mNewA;
    st.mB = mNewB;
    st.lA *= alphaA;
    st.lB *= alphaB;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd)
    {
        o[nd][0] *= alphaA;
        o[nd][1] *= alphaA;
        o[nd][2] *= alphaB;
        o[nd][3] *= alphaB;
    }
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt)
    {
        s[nt][0] = exp2f(s[nt][0] - baseA);
        s[nt][1] = exp2f(s[nt][1] - baseA);
        s[nt][2] = exp2f(s[nt][2] - baseB);
        s[nt][3] = exp2f(s[nt][3] - baseB);
        st.lA += s[nt][0] + s[nt][1];
        st.lB += s[nt][2] + s[nt][3];
    }
}

// P as the A fragment of P.V for keys 16 kp .. 16 kp + 15: the accumulators of key blocks 2kp and 2kp + 1, as f16.
__device__ __forceinline__ void attention_p_fragment(const float (&s)[kTcKeys / 8][4], int kp, uint32_t (&pa)[4])
{
    pa[0] = longdep::pack_half2(s[2 * kp][0], s[2 * kp][1]);
    pa[1] = longdep::pack_half2(s[2 * kp][2], s[2 * kp][3]);
    pa[2] = longdep::pack_half2(s[2 * kp + 1][0], s[2 * kp + 1][1]);
    pa[3] = longdep::pack_half2(s[2 * kp + 1][2], s[2 * kp + 1][3]);
}

// One 64-key tile staged in shared memory (ks [64][D + 8] key j, dim c; vt [D][64 + 8] dim c, key j) for the warp's
// 16 rows: S = Q.K^T, causal, window and end-of-keys mask, online softmax, O += P.V. Keys are virtual indices (prefix
// first): key kb + j is visible to row r when kb + j < keyCount, kb + j <= prefixLen + r and (window > 0)
// kb + j > prefixLen + r - window.
template <int D>
__device__ __forceinline__ void attention_mma_tile(const __half* ks, const __half* vt, const uint32_t (&qa)[D / 16][4],
                                                   float (&o)[D / 8][4], RowState& st, int kb, int keyCount, int prefixLen,
                                                   int rowA, int rowB, int window)
{
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int tq = lane & 3;
    // S = Q.K^T: 16 rows x 64 keys per warp, eight 16x8 accumulators.
    float s[kTcKeys / 8][4];
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt)
    {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        const __half* kr = ks + (nt * 8 + g) * (D + kTcPad) + 2 * tq;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
            longdep::mma_16816(s[nt], qa[kk], longdep::lds_pair(kr, kk * 16), longdep::lds_pair(kr, kk * 16 + 8));
    }
    attention_mask(s, kb, keyCount, prefixLen, rowA, rowB, window);
    attention_softmax<D>(s, o, st);

    // O += P.V: keys 16*kp .. 16*kp + 15 are the accumulators of key blocks 2kp and 2kp + 1.
#pragma unroll
    for (int kp = 0; kp < kTcKeys / 16; ++kp)
    {
        uint32_t pa[4];
        attention_p_fragment(s, kp, pa);
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd)
        {
            const __half* vr = vt + (nd * 8 + g) * kTcVtStride + kp * 16 + 2 * tq;
            longdep::mma_16816(o[nd], pa, longdep::lds_pair(vr, 0), longdep::lds_pair(vr, 8));
        }
    }
}

// Normalizes O by the row sums and writes this thread's columns of rows A and B (rows past the sequence are skipped).
template <int D, typename T>
__device__ __forceinline__ void attention_mma_store(const float (&o)[D / 8][4], RowState st, T* out, size_t seqRow0, int rowA,
                                                    int rowB, int seqLen, size_t qStride, int head)
{
    const int tq = threadIdx.x & 3;
    st.lA = longdep::quad_sum(st.lA);
    st.lB = longdep::quad_sum(st.lB);
    const float invA = 1.0f / st.lA;
    const float invB = 1.0f / st.lB;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd)
    {
        const int c = nd * 8 + 2 * tq;
        if (rowA < seqLen)
        {
            T* dst = out + (seqRow0 + rowA) * qStride + (size_t)head * D + c;
            dst[0] = longdep::from_f32<T>(o[nd][0] * invA);
            dst[1] = longdep::from_f32<T>(o[nd][1] * invA);
        }
        if (rowB < seqLen)
        {
            T* dst = out + (seqRow0 + rowB) * qStride + (size_t)head * D + c;
            dst[0] = longdep::from_f32<T>(o[nd][2] * invB);
            dst[1] = longdep::from_f32<T>(o[nd][3] * invB);
        }
    }
}

template <int D, typename T>
__device__ __forceinline__ void attention_mma_impl(
    const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    const float* __restrict__ kPrefix, const float* __restrict__ vPrefix, const int* __restrict__ prefixStart,
    T* __restrict__ out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, float scale, int window)
{
    static_assert(D % 16 == 0, "head dimension must be a multiple of 16");
    const int seq = blockIdx.z;
    const int head = blockIdx.y;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * kTcRows;
    if (seq >= nSeq || head >= heads || t0 >= seqLen) return; // uniform per block

    const int kvHead = head / (heads / kvHeads);
    const size_t qStride = (size_t)heads * D;
    const size_t kvStride = (size_t)kvHeads * D;
    const size_t seqRow0 = (size_t)seq * seqLen;
    const size_t prefixRow0 = prefixLen > 0 ? (size_t)prefixStart[seq] : 0;

    __half* ks = reinterpret_cast<__half*>(longdep_dynamic_smem); // [64][D + 8]  key j, dim c
    __half* vt = ks + kTcKeys * (D + kTcPad);                      // [D][64 + 8]  dim c, key j

    const int warp = threadIdx.x >> 5;
    const int g = (threadIdx.x & 31) >> 2;
    const int rowA = t0 + warp * 16 + g; // this thread's two accumulator rows
    const int rowB = rowA + 8;

    uint32_t qa[D / 16][4];
    float o[D / 8][4];
    RowState st;
    attention_mma_begin<D>(q, seqRow0, rowA, rowB, seqLen, qStride, head, scale, qa, o);

    const int tLast = min(t0 + kTcRows, seqLen) - 1;
    const int keyCount = prefixLen + tLast + 1; // virtual keys [0, keyCount) cover every row of the block
    // With a window the block's first row sees keys from prefixLen + t0 - window + 1 on; earlier tiles are all masked.
    const int keyFirst = window > 0 ? max(0, prefixLen + t0 - window + 1) / kTcKeys * kTcKeys : 0;

    for (int kb = keyFirst; kb < keyCount; kb += kTcKeys)
    {
        __syncthreads(); // the previous tile is consumed
        // K tile: pairs along the dimension, one half2 store each.
        for (int idx = threadIdx.x; idx < kTcKeys * (D / 2); idx += blockDim.x)
        {
            const int j = idx / (D / 2);
            const int c = (idx - j * (D / 2)) * 2;
            const int kk = kb + j;
            float2 kv = make_float2(0.0f, 0.0f);
            if (kk < keyCount)
            {
                const float* src = kk < prefixLen ? kPrefix + (prefixRow0 + kk) * kvStride
                                                  : k + (seqRow0 + (kk - prefixLen)) * kvStride;
                kv = *reinterpret_cast<const float2*>(src + (size_t)kvHead * D + c);
            }
            *reinterpret_cast<uint32_t*>(ks + j * (D + kTcPad) + c) = longdep::pack_half2(kv.x, kv.y);
        }
        // V tile, transposed: pairs of keys at one dimension, one half2 store each. Keys past the end are
        // zero (their P is zero, and 0 * garbage could be NaN).
        for (int idx = threadIdx.x; idx < (kTcKeys / 2) * D; idx += blockDim.x)
        {
            const int jp = idx / D;
            const int c = idx - jp * D;
            float pair[2];
#pragma unroll
            for (int e = 0; e < 2; ++e)
            {
                const int kk = kb + 2 * jp + e;
                pair[e] = 0.0f;
                if (kk < keyCount)
                {
                    const float* src = kk < prefixLen ? vPrefix + (prefixRow0 + kk) * kvStride
                                                      : v + (seqRow0 + (kk - prefixLen)) * kvStride;
                    pair[e] = src[(size_t)kvHead * D + c];
                }
            }
            *reinterpret_cast<uint32_t*>(vt + c * kTcVtStride + 2 * jp) = longdep::pack_half2(pair[0], pair[1]);
        }
        __syncthreads();

        attention_mma_tile<D>(ks, vt, qa, o, st, kb, keyCount, prefixLen, rowA, rowB, window);
    }

    attention_mma_store<D, T>(o, st, out, seqRow0, rowA, rowB, seqLen, qStride, head);
}

// ---- Keys and values packed once per layer as f16 (no prefix keys): tiles staged by cp.async, double-buffered ----

// k16 [nSeq][paddedLen][kvHeads * D] and vt16 [nSeq][kvHeads][D][paddedLen] (values transposed) from float32 k, v
// [nSeq * seqLen][kvHeads * D]; rows and keys from seqLen to paddedLen (a multiple of 64) are zero, so every 64-key
// tile the attention kernel copies lies inside the buffers and keys past the end carry V = 0.
// Launch: grid = (paddedLen / 64, kvHeads, nSeq), block.x = 256, dynamic shared memory = 64 * (headDim + 1) * 4 bytes.
extern "C" __global__ __launch_bounds__(256) void kv_pack_f16(const float* k, const float* v, __half* k16, __half* vt16,
                                                             int nSeq, int seqLen, int paddedLen, int kvHeads, int headDim)
{
    const int t0 = blockIdx.x * kTcKeys;
    const int h = blockIdx.y;
    const int seq = blockIdx.z;
    if (seq >= nSeq || h >= kvHeads || t0 >= paddedLen) return; // uniform per block
    const int D = headDim;
    const size_t kvStride = (size_t)kvHeads * D;
    float* tile = reinterpret_cast<float*>(longdep_dynamic_smem); // [64][D + 1]: this block's values, key-major
    for (int idx = threadIdx.x; idx < kTcKeys * D; idx += blockDim.x)
    {
        const int j = idx / D;
        const int c = idx - j * D;
        const int t = t0 + j;
        float kv = 0.0f, vv = 0.0f;
        if (t < seqLen)
        {
            const size_t at = ((size_t)seq * seqLen + t) * kvStride + (size_t)h * D + c;
            kv = k[at];
            vv = v[at];
        }
        k16[((size_t)seq * paddedLen + t) * kvStride + (size_t)h * D + c] = __float2half_rn(kv);
        tile[j * (D + 1) + c] = vv;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTcKeys * D; idx += blockDim.x)
    {
        const int c = idx / kTcKeys;
        const int j = idx - c * kTcKeys;
        vt16[(((size_t)seq * kvHeads + h) * D + c) * paddedLen + t0 + j] = __float2half_rn(tile[j * (D + 1) + c]);
    }
}

// Issues the cp.async copies of one 64-key tile starting at key kb into a stage: K rows to ks [64][D + 8], V^T rows to
// vt [D][64 + 8], 16 bytes (8 halves) per copy; Threads = block.x. (Not unrolled: the wide kernels' registers are
// at the limit, and unrolled copies spill them.)
template <int D, int Threads>
__device__ __forceinline__ void attention_kv16_stage(__half* stage, const __half* kBase, const __half* vBase, int kb,
                                                     size_t kvStride, int paddedLen)
{
    __half* ks = stage;
    __half* vt = stage + kTcKeys * (D + kTcPad);
    static_assert(kTcKeys * (D / 8) % Threads == 0 && D * (kTcKeys / 8) % Threads == 0, "whole copy rounds");
#pragma unroll 1
    for (int idx = threadIdx.x; idx < kTcKeys * (D / 8); idx += Threads)
    {
        const int j = idx / (D / 8);
        const int c = (idx - j * (D / 8)) * 8;
        longdep::cp_async16(ks + j * (D + kTcPad) + c, kBase + (size_t)(kb + j) * kvStride + c);
    }
#pragma unroll 1
    for (int idx = threadIdx.x; idx < D * (kTcKeys / 8); idx += Threads)
    {
        const int c = idx / (kTcKeys / 8);
        const int j = (idx - c * (kTcKeys / 8)) * 8;
        longdep::cp_async16(vt + c * kTcVtStride + j, vBase + (size_t)c * paddedLen + kb + j);
    }
}

// One 64-key tile for a warp that owns 32 query rows (two 16-row accumulator tiles: the wide kernels, head dimension
// 64): every K and V fragment read from shared memory (ldmatrix, four fragments an instruction) feeds two products, half
// the shared-memory traffic per product of attention_mma_tile. Only the tile on the warp's diagonal is masked. Per row
// the same products and online-softmax steps in the same order as attention_mma_tile, so the outputs are the same.
template <int D>
__device__ __forceinline__ void attention_wide_tile(const __half* ks, const __half* vt, const uint32_t (&qa)[2][D / 16][4],
                                                    float (&o)[2][D / 8][4], RowState (&st)[2], int kb, int keyCount,
                                                    int warpRow0, int window)
{
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    // ldmatrix addressing: lane l names row (l % 8) of matrix (l / 8).
    const int lrow = lane & 7;
    const int lmat = lane >> 3;

    // S = Q.K^T for both row tiles, every K fragment read once (ldmatrix.x4).
    static_assert(kTcKeys == 64 && kTcPad == 8, "scores_two_tiles takes 64-key tiles padded by 8");
    float s[2][kTcKeys / 8][4];
    longdep::scores_two_tiles<D>(ks, qa, s);

    // The mask changes nothing below the diagonal and inside every row's window: apply it only where a key may pass a row
    // or the end, or (with a window) fall before the window of the warp's last row.
    const bool diagonal = kb + kTcKeys - 1 > warpRow0 || kb + kTcKeys > keyCount || (window > 0 && kb < warpRow0 + 32 - window);
    uint32_t pa[2][kTcKeys / 16][4];
#pragma unroll
    for (int m = 0; m < 2; ++m)
    {
        const int rowA = warpRow0 + 16 * m + g;
        if (diagonal) attention_mask(s[m], kb, keyCount, 0, rowA, rowA + 8, window);
        attention_softmax<D>(s[m], o[m], st[m]);
#pragma unroll
        for (int kp = 0; kp < kTcKeys / 16; ++kp) attention_p_fragment(s[m], kp, pa[m][kp]);
    }

    // O += P.V: per 8 dimensions and 32 keys one ldmatrix.x4 (matrices: dims nd*8.. at keys 16kp.., 16kp+8..,
    // 16kp+16.., 16kp+24..) gives b0, b1 of key blocks kp and kp + 1; each O accumulator takes kp in ascending order.
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd)
    {
        const __half* vr = vt + (nd * 8 + lrow) * kTcVtStride + lmat * 8;
#pragma unroll
        for (int kp = 0; kp < kTcKeys / 16; kp += 2)
        {
            uint32_t b[4];
            longdep::ldsm_x4(b, vr + kp * 16);
#pragma unroll
            for (int m = 0; m < 2; ++m)
            {
                longdep::mma_16816(o[m][nd], pa[m][kp], b[0], b[1]);
                longdep::mma_16816(o[m][nd], pa[m][kp + 1], b[2], b[3]);
            }
        }
    }
}

// attention_mma_impl without prefix keys, reading the packed f16 keys and values: the next tile's copies are in flight
// while the current one is multiplied. Same numerics (the kernel above rounds k and v to f16 when staging). M is the
// number of 16-row tiles per warp: 1 (attention_mma*_kv16_*, 64-row blocks) or 2 (the wide kernels, 128-row blocks,
// which skip the tiles past a warp's last row: there every key is masked and the tile changes nothing). Warps is 4, or
// 8 for the wide8 kernels (256-row blocks): each staged tile then serves twice the rows, half the L2 -> shared-memory
// traffic per product; a warp's rows, and so its results, are the same either way.
// Launch: grid = (ceil(seqLen / (16 M Warps)), heads, nSeq), block.x = 32 Warps (the copy loops stride by it),
//         dynamic shared memory = attention_kv16_smem_bytes(D)
//         = 2 * (64 * (D + 8) + D * 72) * 2 bytes. q 8-byte aligned, k16 and vt16 16-byte aligned.
template <int D, typename T, int M, int Warps = 4>
__device__ __forceinline__ void attention_mma_kv16_impl(const float* __restrict__ q, const __half* __restrict__ k16,
                                                        const __half* __restrict__ vt16, T* __restrict__ out, int nSeq,
                                                        int seqLen, int paddedLen, int heads, int kvHeads, float scale,
                                                        int window)
{
    static_assert(M == 1 || M == 2, "one or two 16-row tiles per warp");
    static_assert(Warps == 4 || (Warps == 8 && M == 2), "4 warps, or 8 for the wide kernels");
    constexpr int blockRows = Warps * 16 * M;
    const int seq = blockIdx.z;
    const int head = blockIdx.y;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * blockRows;
    if (seq >= nSeq || head >= heads || t0 >= seqLen) return; // uniform per block

    const int kvHead = head / (heads / kvHeads);
    const size_t qStride = (size_t)heads * D;
    const size_t kvStride = (size_t)kvHeads * D;
    const size_t seqRow0 = (size_t)seq * seqLen;
    const __half* kBase = k16 + (size_t)seq * paddedLen * kvStride + (size_t)kvHead * D;
    const __half* vBase = vt16 + ((size_t)seq * kvHeads + kvHead) * D * (size_t)paddedLen;
    constexpr int kStage = kTcKeys * (D + kTcPad) + D * kTcVtStride; // halves per stage
    __half* smem = reinterpret_cast<__half*>(longdep_dynamic_smem);

    const int warp = threadIdx.x >> 5;
    const int g = (threadIdx.x & 31) >> 2;
    const int warpRow0 = t0 + warp * 16 * M;
    uint32_t qa[M][D / 16][4];
    float o[M][D / 8][4];
    RowState st[M];
#pragma unroll
    for (int m = 0; m < M; ++m)
        attention_mma_begin<D>(q, seqRow0, warpRow0 + 16 * m + g, warpRow0 + 16 * m + g + 8, seqLen, qStride, head, scale,
                               qa[m], o[m]);

    const int keyCount = min(t0 + blockRows, seqLen); // keys [0, keyCount) cover every row of the block
    const int tiles = (keyCount + kTcKeys - 1) / kTcKeys;
    // With a window the block's first row sees keys from t0 - window + 1 on: the tiles before are all masked.
    const int first = window > 0 ? max(0, t0 - window + 1) / kTcKeys : 0;
    attention_kv16_stage<D, 32 * Warps>(smem + (first & 1) * kStage, kBase, vBase, first * kTcKeys, kvStride, paddedLen);
    longdep::cp_async_commit();
    for (int i = first; i < tiles; ++i)
    {
        if (i + 1 < tiles) attention_kv16_stage<D, 32 * Warps>(smem + ((i + 1) & 1) * kStage, kBase, vBase, (i + 1) * kTcKeys, kvStride, paddedLen);
        longdep::cp_async_commit();
        longdep::cp_async_wait<1>(); // tile i has landed (only tile i + 1's copies may be in flight)
        __syncthreads();
        const __half* ks = smem + (i & 1) * kStage;
        if constexpr (M == 1)
            attention_mma_tile<D>(ks, ks + kTcKeys * (D + kTcPad), qa[0], o[0], st[0], i * kTcKeys, keyCount, 0, warpRow0 + g,
                                  warpRow0 + g + 8, window);
        // uniform per warp: a tile past the warp's last row, or (with a window) wholly before its first row's window, is
        // all masked
        else if (i * kTcKeys <= warpRow0 + 31 && (window <= 0 || (i + 1) * kTcKeys > warpRow0 - window + 1))
            attention_wide_tile<D>(ks, ks + kTcKeys * (D + kTcPad), qa, o, st, i * kTcKeys, keyCount, warpRow0, window);
        __syncthreads(); // the next iteration's copies overwrite this stage
    }
    longdep::cp_async_wait<0>();
#pragma unroll
    for (int m = 0; m < M; ++m)
        attention_mma_store<D, T>(o[m], st[m], out, seqRow0, warpRow0 + 16 * m + g, warpRow0 + 16 * m + g + 8, seqLen, qStride,
                                  head);
}

// (q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, headDim, scale, window), as attention_mma64_kv16_*; headDim
// must be 64.
extern "C" __global__ __launch_bounds__(128) void attention_mma64_kv16_wide_f32(
    const float* q, const __half* k16, const __half* vt16, float* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, float, 2>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_kv16_wide_f16(
    const float* q, const __half* k16, const __half* vt16, __half* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, __half, 2>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_kv16_wide_bf16(
    const float* q, const __half* k16, const __half* vt16, __nv_bfloat16* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, __nv_bfloat16, 2>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

// The wide kernels with 8 warps: 256-row blocks, block.x = 256, grid.x = ceil(seqLen / 256).
extern "C" __global__ __launch_bounds__(256) void attention_mma64_kv16_wide8_f32(
    const float* q, const __half* k16, const __half* vt16, float* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, float, 2, 8>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(256) void attention_mma64_kv16_wide8_f16(
    const float* q, const __half* k16, const __half* vt16, __half* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, __half, 2, 8>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(256) void attention_mma64_kv16_wide8_bf16(
    const float* q, const __half* k16, const __half* vt16, __nv_bfloat16* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, __nv_bfloat16, 2, 8>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

// (q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, headDim, scale, window); headDim must equal the kernel's D.
extern "C" __global__ __launch_bounds__(128) void attention_mma64_kv16_f32(
    const float* q, const __half* k16, const __half* vt16, float* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, float, 1>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_kv16_f16(
    const float* q, const __half* k16, const __half* vt16, __half* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, __half, 1>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_kv16_bf16(
    const float* q, const __half* k16, const __half* vt16, __nv_bfloat16* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_kv16_impl<64, __nv_bfloat16, 1>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_kv16_f32(
    const float* q, const __half* k16, const __half* vt16, float* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    attention_mma_kv16_impl<128, float, 1>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_kv16_f16(
    const float* q, const __half* k16, const __half* vt16, __half* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    attention_mma_kv16_impl<128, __half, 1>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_kv16_bf16(
    const float* q, const __half* k16, const __half* vt16, __nv_bfloat16* out, int nSeq, int seqLen, int paddedLen, int heads,
    int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    attention_mma_kv16_impl<128, __nv_bfloat16, 1>(q, k16, vt16, out, nSeq, seqLen, paddedLen, heads, kvHeads, scale, window);
}

// The parameters of attention_fwd_* without softCap; headDim must equal the kernel's D (the host checks it; a mismatch
// writes nothing).
extern "C" __global__ __launch_bounds__(128) void attention_mma64_f32(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    float* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_impl<64, float>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_f16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __half* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_impl<64, __half>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma64_bf16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __nv_bfloat16* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 64) return;
    attention_mma_impl<64, __nv_bfloat16>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_f32(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    float* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    attention_mma_impl<128, float>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_f16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __half* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    attention_mma_impl<128, __half>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale, window);
}

extern "C" __global__ __launch_bounds__(128) void attention_mma128_bf16(
    const float* q, const float* k, const float* v, const float* kPrefix, const float* vPrefix, const int* prefixStart,
    __nv_bfloat16* out, int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window)
{
    if (headDim != 128) return;
    attention_mma_impl<128, __nv_bfloat16>(q, k, v, kPrefix, vPrefix, prefixStart, out, nSeq, seqLen, prefixLen, heads, kvHeads, scale, window);
}
