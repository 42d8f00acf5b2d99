using LongDep.Core.Probes;

namespace LongDep.Core.Scoring;

/// <summary>
/// The LDS of one record with its intermediate values, all aligned with <see cref="Pairs"/> (canonical order: by i, then j).
/// </summary>
/// <param name="Lds">Long Dependency Score.</param>
/// <param name="PairsUsed">Number of drawn pairs that entered the formula.</param>
/// <param name="PairsAboveThreshold">Number of drawn pairs with DST &gt; δ (the ones that add to LDS).</param>
/// <param name="ChunkCount">Number of chunks of the record (rows and columns of the dlt matrix).</param>
/// <param name="Pairs">The drawn pairs, sorted by i then j.</param>
/// <param name="Dlt">dlt[i][j] = single_ppl[i] − pair_ppl[i][j] of each pair.</param>
/// <param name="Dst">DST of each pair.</param>
/// <param name="Dsp">DSP of each row (chunk i); 0 for rows without a drawn pair.</param>
public sealed record ProLongResult(
    double Lds,
    int PairsUsed,
    int PairsAboveThreshold,
    int ChunkCount,
    IReadOnlyList<ChunkPair> Pairs,
    double[] Dlt,
    double[] Dst,
    double[] Dsp)
{
    /// <summary>True when LDS or any dlt, DST or DSP value is NaN or infinite: the caller reports <c>numeric_error</c>.</summary>
    public bool HasNonFinite =>
        !double.IsFinite(Lds) || !AllFinite(Dlt) || !AllFinite(Dst) || !AllFinite(Dsp);

    /// <summary>
    /// The dlt values as a dense ChunkCount × ChunkCount matrix (for heatmaps); <paramref name="drawn"/>[i, j] is true
    /// for the drawn pairs, whose cells hold dlt; every other cell is 0.
    /// </summary>
    public double[,] DenseDlt(out bool[,] drawn)
    {
        var dense = new double[ChunkCount, ChunkCount];
        drawn = new bool[ChunkCount, ChunkCount];
        for (int k = 0; k < Pairs.Count; k++)
        {
            dense[Pairs[k].I, Pairs[k].J] = Dlt[k];
            drawn[Pairs[k].I, Pairs[k].J] = true;
        }
        return dense;
    }

    private static bool AllFinite(double[] values) => Array.TrueForAll(values, double.IsFinite);
}

/// <summary>
/// ProLong (Chen et al., ACL 2024): DST, DDI, DSP → LDS, exactly as the reference <c>prolong/run.py</c> computes them
/// (compute_de, compute_lds), over the drawn pairs only. Perplexities come from a probe; this class only does the arithmetic.
/// </summary>
public static class ProLong
{
    /// <summary>Dependency STrength: (single_ppl − pair_ppl) / single_ppl.</summary>
    public static double Dst(double singlePpl, double pairPpl) => (singlePpl - pairPpl) / singlePpl;

    /// <summary>
    /// Dependency DIstance: clip((i − j) · (1 / (N − 1)), 0, 1) with N = W / l, the window's chunk count — not the
    /// record's (the reference's quirk). Computed as a product with 1/(N−1), as the reference's dis_scale is.
    /// </summary>
    public static double Ddi(int i, int j, int chunkCountN)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkCountN, 2);
        double disScale = 1.0 / (chunkCountN - 1);
        return Math.Clamp((i - j) * disScale, 0.0, 1.0);
    }

    /// <summary>
    /// Dependency SPecificity of one row, the reference's compute_de: one value → 1; none → 0; otherwise
    /// p = softmax(row) (max subtracted), if any p == 0 then p = (p + 1e-12) / Σp, and
    /// clip((ln m − H(p)) / ln m, 0, 1) with m the row's count. NaN in the row gives NaN.
    /// </summary>
    public static double Dsp(ReadOnlySpan<double> rowDlt)
    {
        int m = rowDlt.Length;
        if (m == 0) return 0;
        if (m == 1) return 1;

        double[] rented = System.Buffers.ArrayPool<double>.Shared.Rent(m);
        try
        {
            Span<double> p = rented.AsSpan(0, m);
            double max = double.NegativeInfinity;
            for (int k = 0; k < m; k++)
            {
                if (double.IsNaN(rowDlt[k])) return double.NaN;
                if (rowDlt[k] > max) max = rowDlt[k];
            }

            double sum = 0;
            for (int k = 0; k < m; k++)
            {
                p[k] = Math.Exp(rowDlt[k] - max);
                sum += p[k];
            }
            bool anyZero = false;
            for (int k = 0; k < m; k++)
            {
                p[k] /= sum;
                if (p[k] == 0) anyZero = true;
            }
            if (anyZero)
            {
                double renorm = 0;
                for (int k = 0; k < m; k++)
                {
                    p[k] += 1e-12;
                    renorm += p[k];
                }
                for (int k = 0; k < m; k++) p[k] /= renorm;
            }

            double entropy = 0;
            for (int k = 0; k < m; k++) entropy += p[k] * Math.Log(p[k]);
            entropy = -entropy;

            double maxEntropy = Math.Log(m);
            return Math.Clamp((maxEntropy - entropy) / maxEntropy, 0.0, 1.0);
        }
        finally
        {
            System.Buffers.ArrayPool<double>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Long Dependency Score over the drawn pairs: Σ over drawn (i, j) with DST &gt; δ of (DST + DDI) · DSP[i],
    /// summed in the reference's order (i ascending, then j ascending).
    /// </summary>
    /// <param name="measurement">single_ppl of every chunk and pair_ppl of every drawn pair (any order, no duplicates).</param>
    /// <param name="chunkCountN">N = W / l (window over chunk length), used by DDI.</param>
    /// <param name="threshold">δ: pairs with DST ≤ δ add nothing.</param>
    public static ProLongResult Lds(ProLongMeasurement measurement, int chunkCountN, double threshold)
    {
        ArgumentNullException.ThrowIfNull(measurement);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkCountN, 2);
        double[] single = measurement.SinglePpl;
        IReadOnlyList<ChunkPair> measured = measurement.Pairs;
        if (measurement.PairPpl.Length != measured.Count)
            throw new ArgumentException($"The measurement has {measured.Count} pairs but {measurement.PairPpl.Length} pair perplexities.", nameof(measurement));

        int n = single.Length;
        int count = measured.Count;
        // Canonical order (i, then j): the reference sums rows in this order.
        var order = new int[count];
        for (int k = 0; k < count; k++)
        {
            ChunkPair pair = measured[k];
            if (pair.J < 0 || pair.J >= pair.I || pair.I >= n)
                throw new ArgumentException($"Pair ({pair.I}, {pair.J}) is not a pair j < i of {n} chunks.", nameof(measurement));
            order[k] = k;
        }
        Array.Sort(order, (a, b) => measured[a].I != measured[b].I ? measured[a].I.CompareTo(measured[b].I) : measured[a].J.CompareTo(measured[b].J));

        var pairs = new ChunkPair[count];
        var dlt = new double[count];
        var dst = new double[count];
        for (int k = 0; k < count; k++)
        {
            pairs[k] = measured[order[k]];
            if (k > 0 && pairs[k] == pairs[k - 1])
                throw new ArgumentException($"Pair ({pairs[k].I}, {pairs[k].J}) appears twice in the measurement.", nameof(measurement));
            double pairPpl = measurement.PairPpl[order[k]];
            dlt[k] = single[pairs[k].I] - pairPpl;
            dst[k] = Dst(single[pairs[k].I], pairPpl);
        }

        // DSP per row over the row's drawn pairs; rows without one stay 0.
        var dsp = new double[n];
        for (int start = 0; start < count;)
        {
            int end = start;
            while (end < count && pairs[end].I == pairs[start].I) end++;
            dsp[pairs[start].I] = Dsp(dlt.AsSpan(start, end - start));
            start = end;
        }

        double lds = 0;
        int above = 0;
        for (int k = 0; k < count; k++)
        {
            if (dst[k] > threshold)
            {
                lds += (dst[k] + Ddi(pairs[k].I, pairs[k].J, chunkCountN)) * dsp[pairs[k].I];
                above++;
            }
        }
        return new ProLongResult(lds, count, above, n, pairs, dlt, dst, dsp);
    }
}
