namespace LongDep.Cuda.Twins;

/// <summary>
/// Twin of attention.cu: causal grouped-query attention over a batch of equal-length sequences, each optionally reading
/// a prefix of keys/values from other buffers first. Scores, softmax and the weighted sum are float64 here. A positive
/// <c>window</c> is a sliding window (query t sees virtual key kk only when prefixLen + t − kk &lt; window), a positive
/// <c>softCap</c> turns each scaled score z into softCap · tanh(z / softCap).
/// </summary>
public static class AttentionTwin
{
    /// <summary>
    /// Query t of sequence b, head h reads kv head h / (heads / kvHeads): prefix rows prefixStart[b] .. +prefixLen−1 of
    /// <paramref name="kPrefix"/>/<paramref name="vPrefix"/>, then its own sequence's rows 0..t of <paramref name="k"/>/<paramref name="v"/>.
    /// Row layouts: q and out [nSeq·seqLen, heads·headDim]; k, v [nSeq·seqLen, kvHeads·headDim]; prefixes [*, kvHeads·headDim].
    /// </summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> kPrefix, ReadOnlySpan<float> vPrefix, ReadOnlySpan<int> prefixStart, Span<float> output,
        int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale, int window = 0, float softCap = 0f)
    {
        int group = heads / kvHeads;
        int qStride = heads * headDim, kvStride = kvHeads * headDim;
        var scores = new double[prefixLen + seqLen];
        var acc = new double[headDim];
        for (int b = 0; b < nSeq; b++)
        {
            for (int t = 0; t < seqLen; t++)
            {
                long row = (long)b * seqLen + t;
                for (int h = 0; h < heads; h++)
                {
                    int g = h / group;
                    var qv = q.Slice((int)(row * qStride) + h * headDim, headDim);
                    int keys = prefixLen + t + 1;
                    int first = window > 0 ? Math.Max(0, keys - window) : 0;
                    double max = double.NegativeInfinity;
                    for (int kk = first; kk < keys; kk++)
                    {
                        var kv = KeyRow(k, kPrefix, prefixStart, b, kk, seqLen, prefixLen, kvStride, g, headDim);
                        double dot = 0;
                        for (int c = 0; c < headDim; c++) dot += (double)qv[c] * kv[c];
                        scores[kk] = Cap(dot * scale, softCap);
                        max = Math.Max(max, scores[kk]);
                    }
                    double sum = 0;
                    for (int kk = first; kk < keys; kk++)
                    {
                        scores[kk] = Math.Exp(scores[kk] - max);
                        sum += scores[kk];
                    }
                    Array.Clear(acc);
                    for (int kk = first; kk < keys; kk++)
                    {
                        var vv = KeyRow(v, vPrefix, prefixStart, b, kk, seqLen, prefixLen, kvStride, g, headDim);
                        double p = scores[kk] / sum;
                        for (int c = 0; c < headDim; c++) acc[c] += p * vv[c];
                    }
                    var dst = output.Slice((int)(row * qStride) + h * headDim, headDim);
                    for (int c = 0; c < headDim; c++) dst[c] = (float)acc[c];
                }
            }
        }
    }

    /// <summary>z, or softCap · tanh(z / softCap) when <paramref name="softCap"/> is positive.</summary>
    internal static double Cap(double z, float softCap) => softCap > 0 ? softCap * Math.Tanh(z / softCap) : z;

    /// <summary>Virtual key kk of sequence b: a prefix row for kk &lt; prefixLen, else own row kk − prefixLen.</summary>
    private static ReadOnlySpan<float> KeyRow(ReadOnlySpan<float> own, ReadOnlySpan<float> prefix, ReadOnlySpan<int> prefixStart,
        int b, int kk, int seqLen, int prefixLen, int kvStride, int g, int headDim)
    {
        if (kk < prefixLen)
            return prefix.Slice((prefixStart[b] + kk) * kvStride + g * headDim, headDim);
        return own.Slice(((b * seqLen) + (kk - prefixLen)) * kvStride + g * headDim, headDim);
    }
}
