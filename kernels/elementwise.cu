// Small element-wise kernels: bias add and float32 -> f16/bf16 conversion (weight upload).
// Launch: any grid.x >= 1 with block.x = 256; grid-stride loops cover every element.
#include "common.cuh"

// x[r, j] += bias[j] for r < rows, j < n.
extern "C" __global__ void add_bias_f32(float* x, const float* bias, int rows, int n)
{
    const size_t total = (size_t)rows * (size_t)n;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        x[i] += bias[i % (size_t)n];
}

extern "C" __global__ void convert_f32_to_f16(const float* src, __half* dst, long long n)
{
    const size_t total = n > 0 ? (size_t)n : 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        dst[i] = __float2half_rn(src[i]);
}

extern "C" __global__ void convert_f32_to_bf16(const float* src, __nv_bfloat16* dst, long long n)
{
    const size_t total = n > 0 ? (size_t)n : 0;
    const size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        dst[i] = __float2bfloat16_rn(src[i]);
}
