using System.Buffers;
using LongDep.Core.Probes;

namespace LongDep.Models.Cpu;

/// <summary>
/// LADM's measurement on the CPU (SPEC §2): for every layer and every span [start, end) of the schedule, the
/// attention each query row t of the span gives to the keys strictly before the span,
/// P_h[t, s] = softmax over s ∈ [0, start) of Q[t, h] · K[s, g(h)] / sqrt(d), summed over the span's rows and averaged
/// over heads into col[s]; PFS(iv) = Σ col[s] for s ∈ [start − iv, end − iv). The scores are the model's own: its
/// score scale and soft-cap, and on a sliding-window layer only the keys the row sees (t − s &lt; window; a row that
/// sees none of the keys before the span gives nothing).
/// One head and one span are one unit of work with its own float64 column sums; heads are then combined in order,
/// so the result does not depend on the thread count.
/// </summary>
public sealed class CpuLadmProbe : ILadmProbe
{
    private const int RowBlock = 16;

    private readonly CpuForward _forward;

    /// <summary>Measures with <paramref name="forward"/>'s model and thread limit.</summary>
    public CpuLadmProbe(CpuForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        _forward = forward;
    }

    /// <inheritdoc />
    public LadmMeasurement Measure(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (tokens.Length != schedule.T)
            throw new ArgumentException($"the schedule is for T = {schedule.T} tokens but {tokens.Length} were given; build the schedule from the truncated sample", nameof(tokens));
        foreach (var span in schedule.Spans)
        {
            if (span.Start < 1 || span.End > schedule.T || span.End <= span.Start)
                throw new ArgumentException($"schedule span [{span.Start}, {span.End}) does not fit in T = {schedule.T}", nameof(schedule));
            foreach (int iv in span.Intervals)
            {
                if (iv < span.End - span.Start || span.Start - iv < 0)
                    throw new ArgumentException($"schedule span [{span.Start}, {span.End}) has interval {iv}, which must be at least the span length and at most its start", nameof(schedule));
            }
        }

        var config = _forward.Config;
        var pfs = new double[config.Layers][][];
        for (int layer = 0; layer < config.Layers; layer++)
        {
            pfs[layer] = new double[schedule.Spans.Count][];
            for (int si = 0; si < schedule.Spans.Count; si++) pfs[layer][si] = new double[schedule.Spans[si].Intervals.Length];
        }
        if (schedule.Spans.Count == 0) return new LadmMeasurement(schedule, pfs);

        _forward.RunCore(tokens, prefix: null, keepCache: false,
            onLayer: (layer, q, keys, _, _) =>
            {
                using var phase = Core.Diagnostics.Phases.Begin($"pfs layer {layer}");
                MeasureLayer(layer, q, keys, schedule, pfs[layer], cancellationToken);
            },
            wantHidden: false, out _, cancellationToken);
        return new LadmMeasurement(schedule, pfs);
    }

    /// <summary>Fills <paramref name="layerPfs"/>[span][k] from one layer's post-RoPE Q [T, QDim] and K [T, KvDim].</summary>
    private void MeasureLayer(int layer, float[] q, float[] k, LadmSchedule schedule, double[][] layerPfs, CancellationToken cancellationToken)
    {
        var c = _forward.Config;
        int heads = c.Heads, spans = schedule.Spans.Count;
        // perHead[span][head][k]: PFS of one head before the mean over heads.
        var perHead = new double[spans][][];
        for (int si = 0; si < spans; si++)
        {
            perHead[si] = new double[heads][];
            for (int h = 0; h < heads; h++) perHead[si][h] = new double[schedule.Spans[si].Intervals.Length];
        }

        var options = new ParallelOptions { MaxDegreeOfParallelism = _forward.MaxThreads, CancellationToken = cancellationToken };
        Parallel.For(0, spans * heads, options, item =>
        {
            int si = item / heads, h = item % heads;
            MeasureHeadSpan(layer, q, k, schedule.Spans[si], h, perHead[si][h]);
        });

        for (int si = 0; si < spans; si++)
        {
            var dst = layerPfs[si];
            for (int j = 0; j < dst.Length; j++)
            {
                double sum = 0;
                for (int h = 0; h < heads; h++) sum += perHead[si][h][j];
                dst[j] = sum / heads;
            }
        }
    }

    /// <summary>One head, one span: col_h[s] = Σ_t P_h[t, s] in float64, then PFS_h(iv) = Σ col_h over [start − iv, end − iv).</summary>
    private void MeasureHeadSpan(int layer, float[] q, float[] k, LadmSpan span, int head, double[] pfsOut)
    {
        var c = _forward.Config;
        int d = c.HeadDim, qDim = c.QDim, kvDim = c.KvDim;
        int g = head / (c.Heads / c.KvHeads);
        int start = span.Start, rows = span.End - span.Start;
        float scale = c.ScaleQueries ? 1f : c.ScoreScale;
        float? cap = c.AttentionSoftCap;
        int? window = c.WindowOf(layer);

        float[] scores = ArrayPool<float>.Shared.Rent(RowBlock * start);
        double[] col = ArrayPool<double>.Shared.Rent(start);
        try
        {
            var colSpan = col.AsSpan(0, start);
            colSpan.Clear();
            for (int r0 = 0; r0 < rows; r0 += RowBlock)
            {
                int count = Math.Min(RowBlock, rows - r0);
                CpuKernels.DotRows(q, (start + r0) * qDim + head * d, qDim, count, k, g * d, kvDim, start, d, scores, 0, start, _forward.Wide);
                for (int r = 0; r < count; r++)
                {
                    int first = window is int w ? Math.Max(0, start + r0 + r + 1 - w) : 0;
                    if (first >= start) continue;
                    var row = scores.AsSpan(r * start + first, start - first);
                    double sum = CpuKernels.ScaledExp(row, scale, cap);
                    CpuKernels.MultiplyAddWidening(row, 1.0 / sum, colSpan[first..]);
                }
            }
            for (int j = 0; j < span.Intervals.Length; j++)
            {
                int iv = span.Intervals[j];
                double sum = 0;
                for (int s = span.Start - iv; s < span.End - iv; s++) sum += col[s];
                pfsOut[j] = sum;
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(col);
            ArrayPool<float>.Shared.Return(scores);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
