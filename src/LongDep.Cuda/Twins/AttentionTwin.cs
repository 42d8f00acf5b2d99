namespace LongDep.Cuda.Twins;

/// <summary>
/// Twin of attention.cu: causal grouped-query attention over a batch of equal-length sequences, each optionally reading
/// a prefix of keys/values from other buffers first. Scores, softmax and the weighted sum are float64 here.
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
        int nSeq, int seqLen, int prefixLen, int heads, int kvHeads, int headDim, float scale)
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
                    double max = double.NegativeInfinity;
                    for (int kk = 0; kk < keys; kk++)
                    {
                        var kv = KeyRow(k, kPrefix, prefixStart, b, kk, seqLen, prefixLen, kvStride, g, headDim);
                        double dot = 0;
                        for (int c = 0; c < headDim; c++) dot += (double)qv[c] * kv[c];
                        scores[kk] = dot * scale;
                        max = Math.Max(max, scores[kk]);
                    }
                    double sum = 0;
                    for (int kk = 0; kk < keys; kk++)
                    {
                        scores[kk] = Math.Exp(scores[kk] - max);
                        sum += scores[kk];
                    }
                    Array.Clear(acc);
                    for (int kk = 0; kk < keys; kk++)
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

    /// <summary>Virtual key kk of sequence b: a prefix row for kk &lt; prefixLen, else own row kk − prefixLen.</summary>
    private static ReadOnlySpan<float> KeyRow(ReadOnlySpan<float> own, ReadOnlySpan<float> prefix, ReadOnlySpan<int> prefixStart,
        int b, int kk, int seqLen, int prefixLen, int kvStride, int g, int headDim)
    {
        if (kk < prefixLen)
            return prefix.Slice((prefixStart[b] + kk) * kvStride + g * headDim, headDim);
        return own.Slice(((b * seqLen) + (kk - prefixLen)) * kvStride + g * headDim, headDim);
    }
}
