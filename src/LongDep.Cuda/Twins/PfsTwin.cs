namespace LongDep.Cuda.Twins;

/// <summary>
/// Twin of pfs.cu, the three passes of LADM's PFS for one layer (SPEC §2). For span sp with query rows
/// [start, end) and keys s &lt; start: P_h[t, s] = softmax_s(q[t, h]·k[s, g(h)]·scale);
/// col[sp, s] = mean over h of Σ_t P_h[t, s]; PFS(item) = Σ col[sp, s] over the item's window [lo, hi).
/// The model's extras as in <see cref="AttentionTwin"/>: with a positive <c>window</c> row t takes only keys s with
/// t − s &lt; window (a row that sees none has max −∞ and sum 0 and adds nothing), a positive <c>softCap</c> caps the scores.
/// </summary>
public static class PfsTwin
{
    /// <summary>Pass 1: per (span, head, row) the softmax max and Σ exp(score − max); layout [nSpans][heads][maxSpanLen].</summary>
    public static void RowStats(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<int> spanStart, ReadOnlySpan<int> spanEnd,
        Span<float> rowMax, Span<float> rowSum, int nSpans, int maxSpanLen, int heads, int kvHeads, int headDim, float scale,
        int window = 0, float softCap = 0f)
    {
        int group = heads / kvHeads;
        for (int sp = 0; sp < nSpans; sp++)
        {
            int start = spanStart[sp], len = spanEnd[sp] - start;
            var scores = new double[start];
            for (int h = 0; h < heads; h++)
            {
                for (int r = 0; r < len; r++)
                {
                    Scores(q, k, start + r, h, h / group, start, heads, kvHeads, headDim, scale, scores, softCap);
                    int first = FirstKey(start + r, window);
                    double max = double.NegativeInfinity;
                    for (int s = first; s < start; s++) max = Math.Max(max, scores[s]);
                    double sum = 0;
                    for (int s = first; s < start; s++) sum += Math.Exp(scores[s] - max);
                    int at = (sp * heads + h) * maxSpanLen + r;
                    rowMax[at] = (float)max;
                    rowSum[at] = (float)sum;
                }
            }
        }
    }

    /// <summary>Pass 2: col[sp·T + s] = (1/heads) Σ_h Σ_t exp(score − rowMax) / rowSum for s &lt; start (other entries untouched).</summary>
    /// <remarks>
    /// With a non-empty <paramref name="keyTiles"/> (<see cref="PfsKeyTiles"/>) only the columns of marked tiles are written;
    /// the others keep what col held, as on the GPU.
    /// </remarks>
    public static void ColumnMass(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<int> spanStart, ReadOnlySpan<int> spanEnd,
        ReadOnlySpan<float> rowMax, ReadOnlySpan<float> rowSum, Span<float> col, int nSpans, int maxSpanLen, int T, int heads,
        int kvHeads, int headDim, float scale, ReadOnlySpan<uint> keyTiles = default, int window = 0, float softCap = 0f)
    {
        int group = heads / kvHeads;
        for (int sp = 0; sp < nSpans; sp++)
        {
            int start = spanStart[sp], len = spanEnd[sp] - start;
            var scores = new double[start];
            var mass = new double[start];
            for (int h = 0; h < heads; h++)
            {
                for (int r = 0; r < len; r++)
                {
                    Scores(q, k, start + r, h, h / group, start, heads, kvHeads, headDim, scale, scores, softCap);
                    int at = (sp * heads + h) * maxSpanLen + r;
                    for (int s = FirstKey(start + r, window); s < start; s++) mass[s] += Math.Exp(scores[s] - rowMax[at]) / rowSum[at];
                }
            }
            for (int s = 0; s < start; s++)
                if (PfsKeyTiles.IsMarked(keyTiles, sp, T, s)) col[sp * T + s] = (float)(mass[s] / heads);
        }
    }

    /// <summary>Window sums: pfs[i] = Σ col[itemSpan[i]·T + s] for s in [itemLo[i], itemHi[i]) ∩ [0, T).</summary>
    public static void WindowSum(ReadOnlySpan<float> col, ReadOnlySpan<int> itemSpan, ReadOnlySpan<int> itemLo, ReadOnlySpan<int> itemHi,
        Span<double> pfs, int nItems, int T)
    {
        for (int i = 0; i < nItems; i++)
        {
            int lo = Math.Max(itemLo[i], 0), hi = Math.Min(itemHi[i], T);
            double total = 0;
            for (int s = lo; s < hi; s++) total += col[itemSpan[i] * T + s];
            pfs[i] = total;
        }
    }

    /// <summary>The first key row <paramref name="t"/> sees: t − window + 1 with a window, else 0.</summary>
    private static int FirstKey(int t, int window) => window > 0 ? Math.Max(0, t - window + 1) : 0;

    private static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> k, int t, int h, int g, int keys, int heads, int kvHeads,
        int headDim, float scale, double[] scores, float softCap)
    {
        var qv = q.Slice(t * heads * headDim + h * headDim, headDim);
        for (int s = 0; s < keys; s++)
        {
            var kv = k.Slice(s * kvHeads * headDim + g * headDim, headDim);
            double dot = 0;
            for (int c = 0; c < headDim; c++) dot += (double)(qv[c] * scale) * kv[c];
            scores[s] = AttentionTwin.Cap(dot, softCap);
        }
    }
}
