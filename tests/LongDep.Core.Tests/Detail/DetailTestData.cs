using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests.Detail;

/// <summary>Outcomes with known measurements, as the scorer would produce them.</summary>
internal static class DetailTestData
{
    public static readonly ScoreSettings ProLongSettings = new() { Method = ScoreMethod.ProLong, Window = 1024, Chunk = 64, Threshold = 0.1 };
    public static readonly ScoreSettings LadmSettings = new() { Method = ScoreMethod.Ladm, Window = 4096, Chunk = 32, DAfs = 4, DCds = 4 };

    public static ScoreRecord Record(long index, string method, ScoreStatus status, double? score) => new()
    {
        Index = index,
        Method = method,
        Status = status,
        Score = status == ScoreStatus.Ok ? score : null,
        Tokens = 1000,
    };

    /// <summary>A ProLong outcome of <paramref name="n"/> chunks with pairs drawn in a shuffled order.</summary>
    public static ScoreOutcome ProLong(long index, int n, int seed)
    {
        var rng = new Random(seed);
        double[] single = Enumerable.Range(0, n).Select(_ => 5 + 20 * rng.NextDouble()).ToArray();
        var pairs = new List<ChunkPair>();
        for (int i = 1; i < n; i++)
            for (int j = 0; j < i; j++)
                if (rng.NextDouble() < 0.6) pairs.Add(new ChunkPair(i, j));
        pairs = pairs.OrderBy(_ => rng.Next()).ToList(); // probes may return any order
        double[] pairPpl = pairs.Select(p => single[p.I] * (0.7 + 0.5 * rng.NextDouble())).ToArray();
        var m = new ProLongMeasurement(single, pairs, pairPpl);
        ProLongResult r = Scoring.ProLong.Lds(m, ProLongSettings.Window / ProLongSettings.Chunk, ProLongSettings.Threshold);
        return new ScoreOutcome(Record(index, "prolong", ScoreStatus.Ok, r.Lds) with { PairsUsed = r.PairsUsed, Chunks = n }, ProLong: r, ProLongMeasurement: m);
    }

    /// <summary>An LADM outcome of <paramref name="t"/> tokens and <paramref name="layers"/> layers with random PFS.</summary>
    public static ScoreOutcome Ladm(long index, int t, int layers, int seed)
    {
        var rng = new Random(seed);
        var schedule = LadmSchedule.Create(t, LadmSettings.Chunk, LadmSettings.DAfs, LadmSettings.DCds);
        var pfs = new double[layers][][];
        for (int y = 0; y < layers; y++)
            pfs[y] = schedule.Spans.Select(s => s.Intervals.Select(_ => rng.NextDouble() * 3).ToArray()).ToArray();
        var m = new LadmMeasurement(schedule, pfs);
        LadmResult r = Scoring.Ladm.Cds(m, LadmAblation.None);
        return new ScoreOutcome(Record(index, "ladm", ScoreStatus.Ok, r.Cds) with { Layers = r.CdsPerLayer }, Ladm: m);
    }
}
