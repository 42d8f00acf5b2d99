using LongDep.Core.Probes;

namespace LongDep.Core.Scoring;

/// <summary>LADM ablations (SPEC §2): <c>no-std</c> drops sigma; <c>no-len-weight</c> drops (iv / T) and (start / T).</summary>
public enum LadmAblation
{
    None,
    NoStd,
    NoLenWeight,
}

/// <summary>The CDS of one record and of each of its layers.</summary>
/// <param name="Cds">Mean over layers of <see cref="CdsPerLayer"/>.</param>
/// <param name="CdsPerLayer">CDS(layer): mean over spans of AFS.</param>
public sealed record LadmResult(double Cds, double[] CdsPerLayer)
{
    /// <summary>True when CDS or any per-layer CDS is NaN or infinite: the caller reports <c>numeric_error</c>.</summary>
    public bool HasNonFinite => !double.IsFinite(Cds) || Array.Exists(CdsPerLayer, v => !double.IsFinite(v));
}

/// <summary>
/// LADM (Chen et al. 2025): PFS → AFS → CDS, exactly as the reference <c>modeling_llama2.py</c> combines them,
/// in float64. PFS values come from a probe; this class only does the arithmetic.
/// </summary>
public static class Ladm
{
    /// <summary>True when the schedule has no span (T too small for the loop bound): the record is <c>too_short</c>.</summary>
    public static bool IsTooShort(LadmSchedule schedule) => schedule.Spans.Count == 0;

    /// <summary>
    /// AFS of one span. Reference order: sigma = sample std (n-1) of the unweighted PFS; then
    /// sum of PFS(iv)·(iv/T); times sigma; times (start/T). A single PFS value gives sigma = NaN, as torch does.
    /// </summary>
    public static double Afs(ReadOnlySpan<double> pfs, ReadOnlySpan<int> intervals, int start, int t, LadmAblation ablation)
    {
        if (pfs.Length != intervals.Length)
            throw new ArgumentException($"PFS has {pfs.Length} values but the span has {intervals.Length} intervals; a probe must measure one PFS per interval.", nameof(pfs));
        ArgumentOutOfRangeException.ThrowIfLessThan(t, 1);

        double sigma = SampleStd(pfs);
        bool lenWeight = ablation != LadmAblation.NoLenWeight;

        double afs = 0;
        for (int k = 0; k < pfs.Length; k++)
        {
            double weighted = lenWeight ? pfs[k] * ((double)intervals[k] / t) : pfs[k];
            afs += weighted;
        }
        if (ablation != LadmAblation.NoStd) afs *= sigma;
        if (lenWeight) afs *= (double)start / t;
        return afs;
    }

    /// <summary>CDS of one layer: mean over the schedule's spans of AFS. <paramref name="pfsOfLayer"/>[span][k] is PFS at Intervals[k].</summary>
    public static double CdsOfLayer(LadmSchedule schedule, double[][] pfsOfLayer, LadmAblation ablation)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(pfsOfLayer);
        if (IsTooShort(schedule))
            throw new ArgumentException($"The schedule for T = {schedule.T} has no span; check Ladm.IsTooShort and report the record as too_short.", nameof(schedule));
        if (pfsOfLayer.Length != schedule.Spans.Count)
            throw new ArgumentException($"PFS has {pfsOfLayer.Length} spans but the schedule has {schedule.Spans.Count}.", nameof(pfsOfLayer));

        double sum = 0;
        for (int s = 0; s < pfsOfLayer.Length; s++)
        {
            LadmSpan span = schedule.Spans[s];
            sum += Afs(pfsOfLayer[s], span.Intervals, span.Start, schedule.T, ablation);
        }
        return sum / pfsOfLayer.Length;
    }

    /// <summary>CDS of a record: mean over layers of <see cref="CdsOfLayer"/>.</summary>
    public static LadmResult Cds(LadmMeasurement measurement, LadmAblation ablation)
    {
        ArgumentNullException.ThrowIfNull(measurement);
        double[][][] pfs = measurement.Pfs;
        if (pfs.Length == 0)
            throw new ArgumentException("The measurement has no layer.", nameof(measurement));

        var perLayer = new double[pfs.Length];
        double sum = 0;
        for (int layer = 0; layer < pfs.Length; layer++)
        {
            perLayer[layer] = CdsOfLayer(measurement.Schedule, pfs[layer], ablation);
            sum += perLayer[layer];
        }
        return new LadmResult(sum / pfs.Length, perLayer);
    }

    /// <summary>Standard deviation with the n-1 denominator (torch.std's default). n = 1 gives NaN.</summary>
    internal static double SampleStd(ReadOnlySpan<double> values)
    {
        int n = values.Length;
        double mean = 0;
        for (int k = 0; k < n; k++) mean += values[k];
        mean /= n;
        double squares = 0;
        for (int k = 0; k < n; k++)
        {
            double d = values[k] - mean;
            squares += d * d;
        }
        return Math.Sqrt(squares / (n - 1));
    }
}
