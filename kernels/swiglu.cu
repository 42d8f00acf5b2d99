// SwiGLU gate: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); float32 in, T out
// (the element type of the down projection's input).
// Launch: any grid.x >= 1 with block.x = 256; grid-stride loop.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void swiglu_impl(const float* __restrict__ gate, const float* __restrict__ up,
                                            T* __restrict__ out, long long n)
{
    const size_t total = n > 0 ? (size_t)n : 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
    {
        const float g = gate[i];
        out[i] = longdep::from_f32<T>(g / (1.0f + expf(-g)) * up[i]);
    }
}

extern "C" __global__ void swiglu_f32(const float* gate, const float* up, float* out, long long n)
{
    swiglu_impl<float>(gate, up, out, n);
}

extern "C" __global__ void swiglu_f16(const float* gate, const float* up, __half* out, long long n)
{
    swiglu_impl<__half>(gate, up, out, n);
}

extern "C" __global__ void swiglu_bf16(const float* gate, const float* up, __nv_bfloat16* out, long long n)
{
    swiglu_impl<__nv_bfloat16>(gate, up, out, n);
}
