using System.Globalization;
using LongDep.Core.Detail;
using LongDep.Core.Records;

namespace LongDep.Cli.Reports;

/// <summary>Heatmaps of one record's measurements from a detail file: ProLong's dlt matrix, or LADM's PFS matrix.</summary>
public static class DetailCharts
{
    /// <summary>
    /// ProLong: dlt[i][j] (rows i = scored chunk, columns j = context chunk; undrawn pairs grey), titled with LDS.
    /// LADM: PFS by query span (rows, by start token) and interval (columns, in tokens), the mean over layers or layer
    /// <paramref name="layer"/>, titled with CDS (or that layer's CDS).
    /// </summary>
    /// <exception cref="ArgumentException">The entry has no measurements, or <paramref name="layer"/> is given for ProLong or out of range.</exception>
    public static RenderedChart Heatmap(DetailEntry entry, int? layer = null, int width = 900, int height = 780)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.ProLong is null && entry.Ladm is null)
            throw new ArgumentException($"record {entry.Index} has no measurements in the detail file (status {entry.Status.ToJsonName()}): nothing to draw; pick an ok record");
        string scoreText = entry.Score is { } s ? Num(s) : entry.Status.ToJsonName();

        if (entry.ProLong is { } p)
        {
            if (layer is not null) throw new ArgumentException("--layer applies to LADM entries; this record was scored with ProLong");
            double[,] dense = p.DenseDlt(out _);
            return Charts.Heatmap(new HeatmapSpec(dense,
                $"Record {entry.Index}: LDS = {scoreText} ({p.ChunkCount} chunks, {p.Pairs.Length} drawn pairs)",
                "context chunk j", "scored chunk i", "dlt = single_ppl[i] - pair_ppl[i][j]"), width, height);
        }

        LadmDetail d = entry.Ladm!;
        if (layer is { } k && (k < 0 || k >= d.Layers))
            throw new ArgumentException($"--layer {k} is out of range: record {entry.Index} has layers 0..{d.Layers - 1}");
        double[,] pfs = d.PfsMatrix(layer, out int[] starts);
        string title = layer is { } one
            ? $"Record {entry.Index}, layer {one}: CDS(layer) = {(one < d.CdsPerLayer.Length ? Num(d.CdsPerLayer[one]) : "?")} (record CDS = {scoreText})"
            : $"Record {entry.Index}: CDS = {scoreText} (PFS, mean over {d.Layers} layers)";
        return Charts.Heatmap(new HeatmapSpec(pfs, title,
            $"interval iv (tokens; step {d.Interval})", "query span (start token)", layer is null ? "PFS (mean over layers)" : "PFS",
            ColumnTick: c => ((c + 1) * d.Interval).ToString(CultureInfo.InvariantCulture),
            RowTick: r => starts[r].ToString(CultureInfo.InvariantCulture)), width, height);
    }

    private static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
