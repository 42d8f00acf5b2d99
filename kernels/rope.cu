// Rotary position embedding, in place on the float32 rows of q (after its bias) and, in the same launch, of k.
//   x[row, head * headDim + ...] rotated by angle = positions[row] * invFreq[i], i in [0, headDim/2).
//   style 0 (adjacent pairs): (x[2i], x[2i+1]);  style 1 (halves): (x[i], x[i + headDim/2]).
//   (a, b) -> (a cos - b sin, a sin + b cos)
// invFreq[i] is the layer's inverse frequency (theta^(-2i/headDim), changed by the model's RoPE scaling: linear,
// dynamic NTK, llama3, yarn, longrope), computed on the host in float64; the angle and its sine/cosine are float64
// here too, because positions reach 128K and a float32 angle would be off by ~1e-2 radians there. cos and sin are
// multiplied by `scale` (the scaling's attention factor: yarn, longrope; 1 otherwise) in float64 before rounding.
// One block per row: the row's headDim/2 sine/cosine pairs are computed once into shared memory and serve all its
// heads of q and of k (a float64 sincos per head and pair would cost (heads + kvHeads) times as many).
// k may be null (kvHeads is then ignored): q alone.
// Launch: grid.x = rows, block.x = 128; headDim <= 256.
#include "common.cuh"

extern "C" __global__ void rope_qk(float* q, float* k, const int* positions, const double* invFreq, int rows,
                                   int heads, int kvHeads, int headDim, int qStride, int kStride, int style, float scale)
{
    __shared__ float2 cs[128];
    const int row = blockIdx.x;
    if (row >= rows) return; // uniform for the whole block
    const int half = headDim / 2;
    const double position = (double)positions[row];
    for (int i = threadIdx.x; i < half; i += blockDim.x)
    {
        double s, c;
        sincos(position * invFreq[i], &s, &c);
        cs[i] = make_float2((float)(c * (double)scale), (float)(s * (double)scale));
    }
    __syncthreads();
    const int qPairs = heads * half;
    const int total = qPairs + (k != nullptr ? kvHeads * half : 0);
    for (int p = threadIdx.x; p < total; p += blockDim.x)
    {
        const bool isQ = p < qPairs;
        const int local = isQ ? p : p - qPairs;
        const int head = local / half;
        const int i = local - head * half;
        float* base = isQ ? q + (size_t)row * qStride + (size_t)head * headDim
                          : k + (size_t)row * kStride + (size_t)head * headDim;
        const float cf = cs[i].x;
        const float sf = cs[i].y;
        const int i0 = style == 0 ? 2 * i : i;
        const int i1 = style == 0 ? 2 * i + 1 : i + half;
        const float a = base[i0];
        const float b = base[i1];
        base[i0] = a * cf - b * sf;
        base[i1] = a * sf + b * cf;
    }
}
