// Per-segment language-model loss; the logits never leave the GPU.
//   loss_row_nll:     nll[r] = logsumexp(z[r, :]) - z[r, targets[r]]   (0 where targets[r] < 0), z = the logits, or
//                     softCap * tanh(logits / softCap) when softCap > 0 (Gemma 2's final-logit soft-cap)
//   loss_segment_sum: segSum[i] = sum of nll[r] over r in [segStart[i], segStart[i] + segLen[i]) with
//                     targets[r] >= 0, in float64; segCount[i] = how many rows were summed.
// The host runs the output head over row tiles ([rows, vocab] stays bounded) and calls
// loss_row_nll once per tile with pointers offset to the tile's first row.
#include "common.cuh"

// Launch: grid.x = rows, block.x = 256 (a multiple of 32, at most 1024).
// A target >= vocab gives NaN (the host validates targets before upload).
extern "C" __global__ void loss_row_nll(const float* logits, const int* targets, float* nll, int rows, int vocab, float softCap)
{
    const float inv = softCap > 0.0f ? 1.0f / softCap : 0.0f;
    auto z = [&](float v) { return softCap > 0.0f ? softCap * tanhf(v * inv) : v; };
    const int row = blockIdx.x;
    if (row >= rows) return;
    const int target = targets[row];
    if (target < 0) // uniform per block
    {
        if (threadIdx.x == 0) nll[row] = 0.0f;
        return;
    }
    const float* x = logits + (size_t)row * vocab;
    float m = longdep::neg_inf();
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, z(x[i]));
    m = longdep::block_max(m);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) sum += expf(z(x[i]) - m);
    sum = longdep::block_sum(sum);
    if (threadIdx.x == 0) nll[row] = target < vocab ? (m + logf(sum)) - z(x[target]) : longdep::quiet_nan();
}

// Launch: grid.x = ceil(nSeg / 128), block.x = 128; one thread per segment, rows summed in order.
extern "C" __global__ void loss_segment_sum(const float* nll, const int* targets, const int* segStart, const int* segLen,
                                            double* segSum, int* segCount, int nSeg)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nSeg) return;
    const int begin = segStart[i];
    const int end = begin + segLen[i];
    double total = 0.0;
    int count = 0;
    for (int r = begin; r < end; ++r)
    {
        if (targets[r] < 0) continue;
        total += (double)nll[r];
        ++count;
    }
    segSum[i] = total;
    segCount[i] = count;
}
