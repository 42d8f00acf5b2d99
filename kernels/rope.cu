// Rotary position embedding, in place on float32 rows of heads (q after its bias, or k).
//   x[row, head * headDim + ...] rotated by angle = positions[row] * invFreq[i], i in [0, headDim/2).
//   style 0 (adjacent pairs): (x[2i], x[2i+1]);  style 1 (halves): (x[i], x[i + headDim/2]).
//   (a, b) -> (a cos - b sin, a sin + b cos)
// invFreq[i] = theta^(-2i/headDim) is computed once on the host in float64; the angle and its
// sine/cosine are float64 here too, because positions reach 128K and a float32 angle would be
// off by ~1e-2 radians there.
// Launch: grid = (rows, heads), block.x = min(headDim/2, 128) rounded up to 32 (threads stride).
#include "common.cuh"

extern "C" __global__ void rope_apply(float* x, const int* positions, const double* invFreq,
                                      int rows, int heads, int headDim, int rowStride, int style)
{
    const int row = blockIdx.x;
    const int head = blockIdx.y;
    if (row >= rows || head >= heads) return;
    const int half = headDim / 2;
    float* base = x + (size_t)row * rowStride + (size_t)head * headDim;
    const double position = (double)positions[row];
    for (int i = threadIdx.x; i < half; i += blockDim.x)
    {
        double s, c;
        sincos(position * invFreq[i], &s, &c);
        const float sf = (float)s;
        const float cf = (float)c;
        const int i0 = style == 0 ? 2 * i : i;
        const int i1 = style == 0 ? 2 * i + 1 : i + half;
        const float a = base[i0];
        const float b = base[i1];
        base[i0] = a * cf - b * sf;
        base[i1] = a * sf + b * cf;
    }
}
