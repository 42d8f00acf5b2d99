// Token embedding gather and learned position rows.
//   embed_gather_*:      out[r, :] = float(table[tokens[r], :]) * scale   (scale: the model's embedding scale, 1 for most;
//                        Gemma's sqrt(dim))
//   embed_add_positions: out[r, :] += posTable[offset + positions[r], :]  (OPT's learned positions, float32 table)
// Launch: grid.x = rows, block.x = 256 (any count works; threads stride over the row).
// A token outside [0, vocab), or a position whose table row is outside [0, tableRows), writes a row of NaN so the fault
// shows in every later number; the host validates both before upload, so this is a last line of defence, not a code path.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void embed_gather_impl(const int* __restrict__ tokens, const T* __restrict__ table,
                                                  float* __restrict__ out, int rows, int dim, int vocab, float scale)
{
    const int row = blockIdx.x;
    if (row >= rows) return;
    float* dst = out + (size_t)row * dim;
    const int token = tokens[row];
    if (token < 0 || token >= vocab)
    {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = longdep::quiet_nan();
        return;
    }
    const T* src = table + (size_t)token * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = longdep::to_f32(src[i]) * scale;
}

extern "C" __global__ void embed_gather_f32(const int* tokens, const float* table, float* out, int rows, int dim, int vocab,
                                            float scale)
{
    embed_gather_impl<float>(tokens, table, out, rows, dim, vocab, scale);
}

extern "C" __global__ void embed_gather_f16(const int* tokens, const __half* table, float* out, int rows, int dim, int vocab,
                                            float scale)
{
    embed_gather_impl<__half>(tokens, table, out, rows, dim, vocab, scale);
}

extern "C" __global__ void embed_gather_bf16(const int* tokens, const __nv_bfloat16* table, float* out, int rows, int dim,
                                             int vocab, float scale)
{
    embed_gather_impl<__nv_bfloat16>(tokens, table, out, rows, dim, vocab, scale);
}

// Learned positions: row r of out gains row offset + positions[r] of the float32 table [tableRows, dim].
extern "C" __global__ void embed_add_positions(const int* positions, const float* table, float* out, int rows, int dim,
                                               int offset, int tableRows)
{
    const int row = blockIdx.x;
    if (row >= rows) return;
    float* dst = out + (size_t)row * dim;
    const int at = offset + positions[row];
    if (positions[row] < 0 || at >= tableRows)
    {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = longdep::quiet_nan();
        return;
    }
    const float* src = table + (size_t)at * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] += src[i];
}
