using System.Diagnostics;
using System.Text.RegularExpressions;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;
using LongDep.Models;

namespace LongDep.Cli.Bench;

/// <summary>What <c>longdep bench</c> runs: the method parameters and how it measures.</summary>
public sealed record BenchOptions
{
    /// <summary>W (LADM scores the first min(len, W) tokens; ProLong keeps N = W / l chunks at most).</summary>
    public int Window { get; init; } = 32768;
    public int Chunk { get; init; } = 128;
    /// <summary>ProLong pairs per sample; −1 for all.</summary>
    public int Pairs { get; init; } = 5000;
    public double Threshold { get; init; } = 0.1;
    public long Seed { get; init; } = 11;
    /// <summary>The LADM (d_afs, d_cds) settings, in the order they run; Table 5's: (4,4), (2,4), (4,2), (2,2).</summary>
    public IReadOnlyList<(int DAfs, int DCds)> LadmSettings { get; init; } = [(4, 4), (2, 4), (4, 2), (2, 2)];
    public bool RunLadm { get; init; } = true;
    public bool RunProLong { get; init; } = true;
    /// <summary>ProLong runs on the first this many samples only (it is the slower method); null for all.</summary>
    public int? ProLongSamples { get; init; }
    /// <summary>Untimed runs of the first sample before each method's timed runs.</summary>
    public int Warmup { get; init; } = 1;
    /// <summary>After the timed runs, one more run of the first sample per method with per-phase timing.</summary>
    public bool Phases { get; init; } = true;
}

/// <summary>One method (and LADM setting) over all samples: per-sample figures aligned with the samples.</summary>
public sealed class MethodResult
{
    public required string Method { get; init; }
    public int? DAfs { get; init; }
    public int? DCds { get; init; }
    public required double[] Seconds { get; init; }
    public required double?[] Scores { get; init; }
    public required string[] Statuses { get; init; }
    /// <summary>Tokens scored per sample: LADM min(len, W); ProLong the sample's length.</summary>
    public required long[] Tokens { get; init; }
    /// <summary>FLOP of each sample by <see cref="FlopModel"/> (LADM pass; ProLong with prefix reuse).</summary>
    public required double[] Flops { get; init; }
    /// <summary>ProLong only: FLOP of each sample the reference's way (every pair 2l tokens).</summary>
    public double[]? ReferenceFlops { get; init; }
    /// <summary>LADM only: CDS of each layer, per sample (null when not scored).</summary>
    public double[]?[]? Layers { get; init; }
    /// <summary>ProLong only: single_ppl of each kept chunk, per sample.</summary>
    public double[]?[]? SinglePpl { get; init; }
    /// <summary>ProLong only: pair_ppl of each drawn pair (plan order: by i, then j), per sample.</summary>
    public double[]?[]? PairPpl { get; init; }
    public int?[]? PairsUsed { get; init; }
    public int?[]? Chunks { get; init; }
    /// <summary>Our buffers' peak during this method (warm-up and timed runs); null on the CPU.</summary>
    public long? PeakAllocatedBytes { get; set; }
    /// <summary>The largest device memory in use seen after a sample; null on the CPU.</summary>
    public long? DeviceUsedMaxBytes { get; set; }
    /// <summary>Pearson of this setting's CDS against the first LADM setting's (Table 5's Correlation); null for ProLong.</summary>
    public double? Correlation { get; set; }

    /// <summary>Median seconds per sample.</summary>
    public double SecondsPerSample => BenchStatistics.Median(Seconds);
    public double MeanSeconds => Seconds.Length == 0 ? double.NaN : Seconds.Average();
    public double TokensPerSecond => Tokens.Sum() / Seconds.Sum();
    public double AchievedTflops => Flops.Sum() / Seconds.Sum() / 1e12;
    public string Label => Method == "ladm" ? $"LADM d_afs {DAfs} d_cds {DCds}" : "ProLong";
}

/// <summary>Per-phase time of one profiled sample (phase names as the NVTX ranges, layer numbers folded into N).</summary>
public sealed record PhaseTime(string Name, double Seconds, long Count);

/// <summary>Everything one bench run measured.</summary>
public sealed class BenchResult
{
    public required List<MethodResult> Methods { get; init; }
    public required Dictionary<string, List<PhaseTime>> Phases { get; init; }
}

/// <summary>
/// Times the probes the way <c>longdep score</c> uses them (the same <see cref="RecordScorer"/>): per method, warm-up
/// runs of the first sample, then every sample once with a wall clock around the whole record (plan, GPU work, copies
/// back and the formulas). Then, unless turned off, one profiled run per method for the per-phase table (ranges are
/// synchronized then, so the phase sums are the GPU's time; that run is not in the timings).
/// </summary>
public sealed partial class BenchRunner(BenchEngine engine, ModelConfig config, BenchOptions options, TextWriter log)
{
    public BenchResult Run(IReadOnlyList<BenchSample> samples, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0) throw new ArgumentException("no sample to run", nameof(samples));
        var methods = new List<MethodResult>();
        var phases = new Dictionary<string, List<PhaseTime>>(StringComparer.Ordinal);
        // One probe per method, disposed after it: a method's peak memory holds its own buffers and the model only.
        if (options.RunLadm)
        {
            using var probe = engine.NewLadmProbe();
            foreach (var (dAfs, dCds) in options.LadmSettings)
                methods.Add(RunLadm(probe, samples, dAfs, dCds, ct));
            var first = methods[0];
            foreach (var m in methods) m.Correlation = BenchStatistics.Pearson(m.Scores, first.Scores);
            if (options.Phases)
                phases["ladm"] = Profile(Scorer(ScoreMethod.Ladm, options.LadmSettings[0], probe, null), samples[0], "ladm", ct);
        }
        if (options.RunProLong)
        {
            using var probe = engine.NewProLongProbe();
            var subset = options.ProLongSamples is { } m && m < samples.Count ? samples.Take(m).ToList() : samples;
            methods.Add(RunProLong(probe, subset, ct));
            if (options.Phases)
                phases["prolong"] = Profile(Scorer(ScoreMethod.ProLong, default, null, probe), samples[0], "prolong", ct);
        }
        return new BenchResult { Methods = methods, Phases = phases };
    }

    private RecordScorer Scorer(ScoreMethod method, (int DAfs, int DCds) setting, ILadmProbe? ladm, IProLongProbe? proLong)
    {
        var settings = new ScoreSettings
        {
            Method = method,
            Window = options.Window,
            Chunk = options.Chunk,
            DAfs = method == ScoreMethod.Ladm ? setting.DAfs : 4,
            DCds = method == ScoreMethod.Ladm ? setting.DCds : 4,
            Pairs = options.Pairs,
            Threshold = options.Threshold,
            Seed = options.Seed,
        };
        if (settings.Validate() is { } bad) throw new ArgumentException(bad);
        return new RecordScorer(settings, ladm, proLong);
    }

    private static InputRecord Input(BenchSample s) => new() { Index = s.Index, Id = s.Id, InputIds = s.Tokens };

    /// <summary>Warm-up, then each sample timed; returns the outcomes with their times.</summary>
    private (ScoreOutcome[] Outcomes, double[] Seconds, long? Peak, long? Used) Time(RecordScorer scorer, IReadOnlyList<BenchSample> samples,
        string label, string range, CancellationToken ct)
    {
        engine.ResetPeak();
        for (int w = 0; w < options.Warmup; w++)
        {
            var watch = Stopwatch.StartNew();
            using (Core.Diagnostics.Phases.Begin(range)) scorer.Score(Input(samples[0]), samples[0].Tokens, ct);
            log.WriteLine($"{label}: warm-up {w + 1}/{options.Warmup} {watch.Elapsed.TotalSeconds:F3} s");
        }
        var outcomes = new ScoreOutcome[samples.Count];
        var seconds = new double[samples.Count];
        long? used = null;
        for (int i = 0; i < samples.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var s = samples[i];
            long start = Stopwatch.GetTimestamp();
            using (Core.Diagnostics.Phases.Begin(range)) outcomes[i] = scorer.Score(Input(s), s.Tokens, ct);
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (engine.ReadMemory() is { } m) used = Math.Max(used ?? 0, m.DeviceUsed);
            var r = outcomes[i].Record;
            log.WriteLine($"{label}: sample {i + 1}/{samples.Count} ({s.Tokens.Length} tokens) {seconds[i]:F3} s, " +
                          $"{r.Status.ToJsonName()}{(r.Score is { } v ? $" score {v:G6}" : "")}");
        }
        return (outcomes, seconds, engine.ReadMemory()?.PeakAllocated, used);
    }

    private MethodResult RunLadm(ILadmProbe probe, IReadOnlyList<BenchSample> samples, int dAfs, int dCds, CancellationToken ct)
    {
        var (outcomes, seconds, peak, used) = Time(Scorer(ScoreMethod.Ladm, (dAfs, dCds), probe, null), samples, $"ladm {dAfs}/{dCds}", "bench ladm sample", ct);
        var tokens = samples.Select(s => (long)Math.Min(s.Tokens.Length, options.Window)).ToArray();
        return new MethodResult
        {
            Method = "ladm",
            DAfs = dAfs,
            DCds = dCds,
            Seconds = seconds,
            Scores = outcomes.Select(o => o.Record.Score).ToArray(),
            Statuses = outcomes.Select(o => o.Record.Status.ToJsonName()).ToArray(),
            Tokens = tokens,
            Flops = outcomes.Select((o, i) => o.Ladm is null ? 0 : FlopModel.LadmPass(config, (int)tokens[i])).ToArray(),
            Layers = outcomes.Select(o => o.Record.Layers).ToArray(),
            PeakAllocatedBytes = peak,
            DeviceUsedMaxBytes = used,
        };
    }

    private MethodResult RunProLong(IProLongProbe probe, IReadOnlyList<BenchSample> samples, CancellationToken ct)
    {
        var (outcomes, seconds, peak, used) = Time(Scorer(ScoreMethod.ProLong, default, null, probe), samples, "prolong", "bench prolong sample", ct);
        int l = options.Chunk;
        double Flops(ScoreOutcome o, Func<ModelConfig, int, int, int, double> model) =>
            o.ProLongMeasurement is { } m ? model(config, m.SinglePpl.Length, m.PairPpl.Length, l) : 0;
        return new MethodResult
        {
            Method = "prolong",
            Seconds = seconds,
            Scores = outcomes.Select(o => o.Record.Score).ToArray(),
            Statuses = outcomes.Select(o => o.Record.Status.ToJsonName()).ToArray(),
            Tokens = samples.Select(s => (long)s.Tokens.Length).ToArray(),
            Flops = outcomes.Select(o => Flops(o, FlopModel.ProLongPrefixReuse)).ToArray(),
            ReferenceFlops = outcomes.Select(o => Flops(o, FlopModel.ProLongReference)).ToArray(),
            SinglePpl = outcomes.Select(o => o.ProLongMeasurement?.SinglePpl).ToArray(),
            PairPpl = outcomes.Select(o => o.ProLongMeasurement?.PairPpl).ToArray(),
            PairsUsed = outcomes.Select(o => o.Record.PairsUsed).ToArray(),
            Chunks = outcomes.Select(o => o.Record.Chunks).ToArray(),
            PeakAllocatedBytes = peak,
            DeviceUsedMaxBytes = used,
        };
    }

    /// <summary>One run of <paramref name="sample"/> with per-phase timing on; the phases, layer numbers folded.</summary>
    private List<PhaseTime> Profile(RecordScorer scorer, BenchSample sample, string method, CancellationToken ct)
    {
        bool was = Core.Diagnostics.Phases.Timing;
        Core.Diagnostics.Phases.Reset();
        Core.Diagnostics.Phases.Timing = true;
        try
        {
            using (Core.Diagnostics.Phases.Begin($"bench {method} sample")) scorer.Score(Input(sample), sample.Tokens, ct);
        }
        finally
        {
            Core.Diagnostics.Phases.Timing = was;
        }
        var result = FoldPhases(Core.Diagnostics.Phases.Snapshot());
        Core.Diagnostics.Phases.Reset();
        return result;
    }

    /// <summary>Sums phases whose names differ only in numbers ("forward layer 3" → "forward layer N"), longest first.</summary>
    public static List<PhaseTime> FoldPhases(IEnumerable<(string Name, TimeSpan Total, long Count)> phases) =>
        phases.GroupBy(p => Numbers().Replace(p.Name, "N"), StringComparer.Ordinal)
              .Select(g => new PhaseTime(g.Key, g.Sum(p => p.Total.TotalSeconds), g.Sum(p => p.Count)))
              .OrderByDescending(p => p.Seconds)
              .ThenBy(p => p.Name, StringComparer.Ordinal)
              .ToList();

    // Whole numbers only: "h2d" and "d2h" keep their digits.
    [GeneratedRegex(@"\b\d+(\.\.\d+)?\b")]
    private static partial Regex Numbers();
}
