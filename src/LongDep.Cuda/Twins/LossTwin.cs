namespace LongDep.Cuda.Twins;

/// <summary>Twin of loss.cu: per-row negative log-likelihood and per-segment sums.</summary>
public static class LossTwin
{
    /// <summary>
    /// nll[r] = logsumexp(z[r, :]) − z[r, targets[r]]; 0 when targets[r] &lt; 0; NaN when ≥ vocab. z = the logits, or
    /// softCap · tanh(logits / softCap) when <paramref name="softCap"/> is positive (in float64).
    /// </summary>
    public static void RowNll(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> nll, int rows, int vocab, float softCap = 0f)
    {
        for (int r = 0; r < rows; r++)
        {
            int target = targets[r];
            if (target < 0)
            {
                nll[r] = 0f;
                continue;
            }
            var x = logits.Slice(r * vocab, vocab);
            double max = double.NegativeInfinity;
            foreach (float v in x) max = Math.Max(max, AttentionTwin.Cap(v, softCap));
            double sum = 0;
            foreach (float v in x) sum += Math.Exp(AttentionTwin.Cap(v, softCap) - max);
            nll[r] = target < vocab ? (float)(max + Math.Log(sum) - AttentionTwin.Cap(x[target], softCap)) : float.NaN;
        }
    }

    /// <summary>segSum[i] = Σ nll[r] over the segment's rows with targets[r] ≥ 0; segCount[i] = how many.</summary>
    public static void SegmentSum(ReadOnlySpan<float> nll, ReadOnlySpan<int> targets, ReadOnlySpan<int> segStart, ReadOnlySpan<int> segLen,
        Span<double> segSum, Span<int> segCount, int nSeg)
    {
        for (int i = 0; i < nSeg; i++)
        {
            double total = 0;
            int count = 0;
            for (int r = segStart[i]; r < segStart[i] + segLen[i]; r++)
            {
                if (targets[r] < 0) continue;
                total += nll[r];
                count++;
            }
            segSum[i] = total;
            segCount[i] = count;
        }
    }
}
