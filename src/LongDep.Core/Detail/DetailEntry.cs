using LongDep.Core.Probes;
using LongDep.Core.Records;

namespace LongDep.Core.Detail;

/// <summary>The fixed part of one detail entry, read without decompressing its payload.</summary>
/// <param name="Index">The record's 0-based input index.</param>
/// <param name="Method">"ladm" or "prolong".</param>
/// <param name="Status">The record's status.</param>
/// <param name="Score">CDS or LDS when ok, else null.</param>
/// <param name="Offset">File offset of the frame (its length field).</param>
/// <param name="BodyBytes">Length of the frame body.</param>
/// <param name="PayloadBytes">Size of the payload before compression; 0 when the entry has none.</param>
public readonly record struct DetailEntryHeader(long Index, string Method, ScoreStatus Status, double? Score, long Offset, int BodyBytes, int PayloadBytes)
{
    /// <summary>True when the entry carries measurements.</summary>
    public bool HasPayload => PayloadBytes > 0;
}

/// <summary>One decoded detail entry: its header and the measurements of its method (null when it has no payload).</summary>
public sealed record DetailEntry(DetailEntryHeader Header, ProLongDetail? ProLong, LadmDetail? Ladm)
{
    /// <summary>The record's 0-based input index.</summary>
    public long Index => Header.Index;
    /// <summary>"ladm" or "prolong".</summary>
    public string Method => Header.Method;
    /// <summary>The record's status.</summary>
    public ScoreStatus Status => Header.Status;
    /// <summary>CDS or LDS when ok, else null.</summary>
    public double? Score => Header.Score;
}

/// <summary>
/// ProLong measurements of one record, in float32: single_ppl of each chunk and, for each drawn pair (sorted by i then j),
/// pair_ppl and dlt = single_ppl[i] − pair_ppl (computed in float64 before rounding).
/// </summary>
/// <param name="ChunkCount">n: chunks of the record (rows and columns of the dlt matrix).</param>
/// <param name="ChunkCountN">N = W / l, DDI's denominator N − 1.</param>
/// <param name="Threshold">δ of the run.</param>
public sealed record ProLongDetail(int ChunkCount, int ChunkCountN, double Threshold, float[] SinglePpl, ChunkPair[] Pairs, float[] PairPpl, float[] Dlt)
{
    /// <summary>
    /// The dlt values as a dense n × n matrix: <c>[i, j]</c> holds dlt of the drawn pair (i, j); every other cell is NaN
    /// and false in <paramref name="drawn"/>.
    /// </summary>
    public double[,] DenseDlt(out bool[,] drawn)
    {
        var dense = new double[ChunkCount, ChunkCount];
        drawn = new bool[ChunkCount, ChunkCount];
        for (int i = 0; i < ChunkCount; i++)
            for (int j = 0; j < ChunkCount; j++)
                dense[i, j] = double.NaN;
        for (int k = 0; k < Pairs.Length; k++)
        {
            dense[Pairs[k].I, Pairs[k].J] = Dlt[k];
            drawn[Pairs[k].I, Pairs[k].J] = true;
        }
        return dense;
    }
}

/// <summary>
/// LADM measurements of one record: the schedule (spans in the reference's order, latest first) and
/// <c>Pfs[layer][span][k]</c> at <c>Spans[span].Intervals[k]</c>, in float32, with the per-layer CDS of the run.
/// </summary>
/// <param name="T">Tokens scored (min(len, W)).</param>
/// <param name="Chunk">l.</param>
/// <param name="Interval">l · d_afs.</param>
/// <param name="Stride">l · d_cds.</param>
/// <param name="CdsPerLayer">CDS(layer) as the run computed it (empty when it was not known).</param>
public sealed record LadmDetail(int T, int Chunk, int Interval, int Stride, LadmSpan[] Spans, float[][][] Pfs, double[] CdsPerLayer)
{
    /// <summary>Number of layers measured.</summary>
    public int Layers => Pfs.Length;

    /// <summary>Most intervals of any span (the columns of <see cref="PfsMatrix"/>).</summary>
    public int MaxIntervals => Spans.Length == 0 ? 0 : Spans.Max(s => s.Intervals.Length);

    /// <summary>
    /// PFS as a matrix for heatmaps: row r is the r-th span by start ascending (earliest span first), column k is the
    /// interval (k + 1) · <see cref="Interval"/>; cells past a span's last interval are NaN. Values are the mean over
    /// layers, or layer <paramref name="layer"/> alone.
    /// </summary>
    /// <param name="rowStarts">Start token of each row's span.</param>
    public double[,] PfsMatrix(int? layer, out int[] rowStarts)
    {
        if (layer is { } l && (l < 0 || l >= Layers))
            throw new ArgumentOutOfRangeException(nameof(layer), l, $"the entry has layers 0..{Layers - 1}");
        int rows = Spans.Length, cols = MaxIntervals;
        int[] order = Enumerable.Range(0, rows).OrderBy(s => Spans[s].Start).ToArray();
        rowStarts = order.Select(s => Spans[s].Start).ToArray();
        var m = new double[rows, cols];
        int first = layer ?? 0, last = layer ?? Layers - 1;
        for (int r = 0; r < rows; r++)
        {
            int s = order[r];
            for (int k = 0; k < cols; k++)
            {
                if (k >= Spans[s].Intervals.Length || Layers == 0)
                {
                    m[r, k] = double.NaN;
                    continue;
                }
                double sum = 0;
                for (int y = first; y <= last; y++) sum += Pfs[y][s][k];
                m[r, k] = sum / (last - first + 1);
            }
        }
        return m;
    }
}
