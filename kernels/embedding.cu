// Token embedding gather: out[r, :] = float(table[tokens[r], :]).
// Launch: grid.x = rows, block.x = 256 (any count works; threads stride over the row).
// A token outside [0, vocab) writes a row of NaN so the fault shows in every later number;
// the host validates tokens before upload, so this is a last line of defence, not a code path.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void embed_gather_impl(const int* __restrict__ tokens, const T* __restrict__ table,
                                                  float* __restrict__ out, int rows, int dim, int vocab)
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
    for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = longdep::to_f32(src[i]);
}

extern "C" __global__ void embed_gather_f32(const int* tokens, const float* table, float* out, int rows, int dim, int vocab)
{
    embed_gather_impl<float>(tokens, table, out, rows, dim, vocab);
}

extern "C" __global__ void embed_gather_f16(const int* tokens, const __half* table, float* out, int rows, int dim, int vocab)
{
    embed_gather_impl<__half>(tokens, table, out, rows, dim, vocab);
}

extern "C" __global__ void embed_gather_bf16(const int* tokens, const __nv_bfloat16* table, float* out, int rows, int dim, int vocab)
{
    embed_gather_impl<__nv_bfloat16>(tokens, table, out, rows, dim, vocab);
}
