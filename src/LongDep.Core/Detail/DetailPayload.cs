using System.Buffers;
using System.Buffers.Binary;
using LongDep.Core.Probes;
using LongDep.Core.Scoring;

namespace LongDep.Core.Detail;

/// <summary>Encodes and decodes the uncompressed payloads of <see cref="DetailFormat"/>.</summary>
internal static class DetailPayload
{
    /// <summary>Most layers an LADM payload may declare (no supported model comes near).</summary>
    public const int MaxLayers = 4096;

    /// <summary>Writes a ProLong payload; pair_ppl comes from the measurement when it has the pair, else single − dlt.</summary>
    public static void WriteProLong(IBufferWriter<byte> w, ProLongResult r, ProLongMeasurement? m, int chunkCountN, double threshold)
    {
        double[]? single = m?.SinglePpl;
        int n = r.ChunkCount;
        Dictionary<ChunkPair, double>? measured = null;
        if (m is not null)
        {
            measured = new Dictionary<ChunkPair, double>(m.Pairs.Count);
            for (int k = 0; k < m.Pairs.Count && k < m.PairPpl.Length; k++) measured[m.Pairs[k]] = m.PairPpl[k];
        }
        Int32(w, n);
        Int32(w, chunkCountN);
        Float64(w, threshold);
        for (int i = 0; i < n; i++) Float32(w, single is not null && i < single.Length ? single[i] : double.NaN);
        Int32(w, r.Pairs.Count);
        for (int k = 0; k < r.Pairs.Count; k++)
        {
            ChunkPair p = r.Pairs[k];
            double pairPpl = measured is not null && measured.TryGetValue(p, out double v)
                ? v
                : single is not null && p.I < single.Length ? single[p.I] - r.Dlt[k] : double.NaN;
            Int32(w, p.I);
            Int32(w, p.J);
            Float32(w, pairPpl);
            Float32(w, r.Dlt[k]);
        }
    }

    /// <summary>Writes an LADM payload.</summary>
    public static void WriteLadm(IBufferWriter<byte> w, LadmMeasurement m, double[]? cdsPerLayer)
    {
        LadmSchedule s = m.Schedule;
        Int32(w, s.T);
        Int32(w, s.Chunk);
        Int32(w, s.Interval);
        Int32(w, s.Stride);
        Int32(w, s.Spans.Count);
        foreach (LadmSpan span in s.Spans)
        {
            Int32(w, span.Start);
            Int32(w, span.End);
            Int32(w, span.Intervals.Length);
            foreach (int iv in span.Intervals) Int32(w, iv);
        }
        Int32(w, m.Pfs.Length);
        for (int layer = 0; layer < m.Pfs.Length; layer++)
        {
            if (m.Pfs[layer].Length != s.Spans.Count)
                throw new ArgumentException($"layer {layer} has PFS for {m.Pfs[layer].Length} spans but the schedule has {s.Spans.Count}", nameof(m));
            for (int span = 0; span < s.Spans.Count; span++)
            {
                double[] pfs = m.Pfs[layer][span];
                if (pfs.Length != s.Spans[span].Intervals.Length)
                    throw new ArgumentException($"layer {layer} span {span} has {pfs.Length} PFS values for {s.Spans[span].Intervals.Length} intervals", nameof(m));
                foreach (double v in pfs) Float32(w, v);
            }
        }
        double[] cds = cdsPerLayer is not null && cdsPerLayer.Length == m.Pfs.Length ? cdsPerLayer : [];
        Int32(w, cds.Length);
        foreach (double v in cds) Float64(w, v);
    }

    /// <summary>Reads a ProLong payload; throws <see cref="FormatException"/> naming what is wrong.</summary>
    public static ProLongDetail ReadProLong(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        int n = r.Count(4, "chunk count n");
        int bigN = r.Int32();
        if (bigN < 2) throw new FormatException($"N = W / l is {bigN}; expected at least 2");
        double threshold = r.Float64();
        var single = new float[n];
        for (int i = 0; i < n; i++) single[i] = r.Float32();
        int m = r.Count(16, "pair count");
        var pairs = new ChunkPair[m];
        var pairPpl = new float[m];
        var dlt = new float[m];
        for (int k = 0; k < m; k++)
        {
            int i = r.Int32(), j = r.Int32();
            if (j < 0 || j >= i || i >= n) throw new FormatException($"pair {k} is ({i}, {j}); expected 0 <= j < i < n = {n}");
            pairs[k] = new ChunkPair(i, j);
            pairPpl[k] = r.Float32();
            dlt[k] = r.Float32();
        }
        r.End();
        return new ProLongDetail(n, bigN, threshold, single, pairs, pairPpl, dlt);
    }

    /// <summary>Reads an LADM payload; throws <see cref="FormatException"/> naming what is wrong.</summary>
    public static LadmDetail ReadLadm(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        int t = r.Int32(), chunk = r.Int32(), interval = r.Int32(), stride = r.Int32();
        if (t < 1 || chunk < 1 || interval < 1 || stride < 1)
            throw new FormatException($"the schedule is T = {t}, chunk = {chunk}, interval = {interval}, stride = {stride}; expected positive values");
        int spanCount = r.Count(12, "span count");
        var spans = new LadmSpan[spanCount];
        long values = 0;
        for (int s = 0; s < spanCount; s++)
        {
            int start = r.Int32(), end = r.Int32();
            if (start < 0 || end <= start || end > t)
                throw new FormatException($"span {s} is [{start}, {end}); expected 0 <= start < end <= T = {t}");
            int k = r.Count(4, $"interval count of span {s}");
            var ivs = new int[k];
            for (int q = 0; q < k; q++)
            {
                ivs[q] = r.Int32();
                if (ivs[q] < 1 || ivs[q] > start) throw new FormatException($"span {s} interval {q} is {ivs[q]}; expected 1..{start}");
            }
            spans[s] = new LadmSpan(start, end, ivs);
            values += k;
        }
        int layers = r.Int32();
        if (layers < 0 || layers > MaxLayers || (values > 0 && layers > r.Remaining / 4 / values))
            throw new FormatException($"the layer count is {layers}; expected 0..{MaxLayers} layers of {values} PFS values each within the {r.Remaining} bytes left");
        var pfs = new float[layers][][];
        for (int y = 0; y < layers; y++)
        {
            pfs[y] = new float[spanCount][];
            for (int s = 0; s < spanCount; s++)
            {
                var row = new float[spans[s].Intervals.Length];
                for (int q = 0; q < row.Length; q++) row[q] = r.Float32();
                pfs[y][s] = row;
            }
        }
        int c = r.Count(8, "CDS count");
        if (c != 0 && c != layers) throw new FormatException($"{c} per-layer CDS values for {layers} layers");
        var cds = new double[c];
        for (int y = 0; y < c; y++) cds[y] = r.Float64();
        r.End();
        return new LadmDetail(t, chunk, interval, stride, spans, pfs, cds);
    }

    private static void Int32(IBufferWriter<byte> w, int v)
    {
        BinaryPrimitives.WriteInt32LittleEndian(w.GetSpan(4), v);
        w.Advance(4);
    }

    private static void Float32(IBufferWriter<byte> w, double v)
    {
        BinaryPrimitives.WriteSingleLittleEndian(w.GetSpan(4), (float)v);
        w.Advance(4);
    }

    private static void Float64(IBufferWriter<byte> w, double v)
    {
        BinaryPrimitives.WriteDoubleLittleEndian(w.GetSpan(8), v);
        w.Advance(8);
    }

    /// <summary>Bounds-checked little-endian reads; every count is checked against the bytes left before use.</summary>
    private ref struct PayloadReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly int Remaining => _data.Length - _pos;

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        public float Float32() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));
        public double Float64() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

        /// <summary>A count of items of at least <paramref name="bytesEach"/> bytes that must fit in what is left.</summary>
        public int Count(int bytesEach, string what)
        {
            int n = Int32();
            if (n < 0 || n > Remaining / bytesEach)
                throw new FormatException($"the {what} is {n}, more than the {Remaining} bytes left can hold");
            return n;
        }

        public readonly void End()
        {
            if (Remaining != 0) throw new FormatException($"{Remaining} bytes are left over after the payload");
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            if (Remaining < n) throw new FormatException($"the payload ends early (needed {n} more bytes at byte {_pos} of {_data.Length})");
            ReadOnlySpan<byte> s = _data.Slice(_pos, n);
            _pos += n;
            return s;
        }
    }
}
