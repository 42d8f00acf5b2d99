using System.Globalization;
using System.Text;
using System.Text.Json;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Bench;

/// <summary>What was benchmarked, for the report: the model, the samples, the device.</summary>
public sealed record BenchContext
{
    public required string ModelSource { get; init; }
    public required ModelConfig Config { get; init; }
    public required string SampleSource { get; init; }
    public required IReadOnlyList<BenchSample> Samples { get; init; }
    public required BenchOptions Options { get; init; }
    public required string DeviceKind { get; init; }
    public required string DeviceDescription { get; init; }
    public double? PeakTflops { get; init; }
    public long? TotalMemory { get; init; }
    public long? BaselineUsed { get; init; }
    public string? SamplesFile { get; init; }
}

/// <summary>
/// The bench's output: the LADM paper's Table 5 layout (Method, d_AFS, d_CDS, Sec/sample, Correlation) for this run,
/// throughput and memory, the FLOP model and the per-phase breakdown; and the same figures as JSON for scripts.
/// </summary>
public static class BenchReport
{
    /// <summary>Table 5 of the LADM paper (Sec/sample, Correlation), for reference next to this run's figures.</summary>
    private static readonly Dictionary<(int, int), (double Seconds, double Correlation)> PaperLadm = new()
    {
        [(4, 4)] = (2.46, 1.000),
        [(2, 4)] = (2.47, 0.719),
        [(4, 2)] = (3.95, 0.721),
        [(2, 2)] = (3.98, 0.719),
    };
    private const double PaperProLongSeconds = 2.46;

    /// <summary>
    /// The memory figure the targets are checked on: the most device memory seen in use after a sample, or what was in
    /// use before the model plus our buffers' peak, whichever is larger (the first misses buffers freed within a sample,
    /// the second misses cuBLAS's workspace).
    /// </summary>
    public static long? PeakMemory(MethodResult m, long? baselineUsed)
    {
        long? fromPeak = m.PeakAllocatedBytes is { } p ? p + (baselineUsed ?? 0) : null;
        if (fromPeak is null) return m.DeviceUsedMaxBytes;
        if (m.DeviceUsedMaxBytes is null) return fromPeak;
        return Math.Max(fromPeak.Value, m.DeviceUsedMaxBytes.Value);
    }

    /// <summary>
    /// A console on <paramref name="output"/>; for a file or pipe (<paramref name="plain"/>) 150 columns wide and
    /// without colour codes, so that logs read well.
    /// </summary>
    internal static IAnsiConsole Console(TextWriter output, bool plain)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = plain ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = plain ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
        });
        if (plain) console.Profile.Width = 150;
        return console;
    }

    public static void Print(TextWriter output, BenchContext ctx, BenchResult result, bool wide)
    {
        var console = BenchReport.Console(output, wide);
        var c = ctx.Config;
        console.MarkupLine($"[bold]longdep bench[/]: {Markup.Escape(ctx.ModelSource)} ({c.Layers} layers, {c.Dim} dims, {c.Heads}/{c.KvHeads} heads, " +
                           $"{c.ParameterCount:N0} parameters)");
        console.MarkupLine($"samples: {Markup.Escape(ctx.SampleSource)}; device: {Markup.Escape(ctx.DeviceDescription)}");
        var o = ctx.Options;
        console.MarkupLine($"W {o.Window}, l {o.Chunk}, pairs {(o.Pairs < 0 ? "all" : o.Pairs.ToString(CultureInfo.InvariantCulture))}, " +
                           $"seed {o.Seed}, warm-up {o.Warmup}; Sec/sample is the median over {ctx.Samples.Count} samples");

        var table5 = new Table().Border(TableBorder.Rounded).Title("[bold]Table 5 layout (LADM paper): this run[/]");
        table5.AddColumn("Method");
        foreach (var h in new[] { "d_AFS", "d_CDS", "Sec/sample", "Correlation", "paper Sec/sample", "paper Corr." })
            table5.AddColumn(new TableColumn(h).RightAligned());
        foreach (var m in result.Methods)
        {
            bool ladm = m.Method == "ladm";
            (double Seconds, double Correlation)? paper = ladm && PaperLadm.TryGetValue((m.DAfs!.Value, m.DCds!.Value), out var p) ? p : null;
            table5.AddRow(
                ladm ? "LADM" : "ProLong",
                ladm ? m.DAfs!.Value.ToString(CultureInfo.InvariantCulture) : "-",
                ladm ? m.DCds!.Value.ToString(CultureInfo.InvariantCulture) : "-",
                Num(m.SecondsPerSample, "F3"),
                ladm ? Num(m.Correlation, "F3") : "-",
                paper is { } pp ? pp.Seconds.ToString("F2", CultureInfo.InvariantCulture) : ladm ? "-" : PaperProLongSeconds.ToString("F2", CultureInfo.InvariantCulture),
                paper is { } pc ? pc.Correlation.ToString("F3", CultureInfo.InvariantCulture) : "-");
        }
        console.Write(table5);
        if (result.Methods.Count(m => m.Method == "ladm") > 1)
            console.MarkupLine("Correlation: Pearson of each setting's CDS against the first LADM setting's, over the samples (the paper used 5,000).");

        var speed = new Table().Border(TableBorder.Rounded).Title("[bold]throughput and memory[/]");
        speed.AddColumn("Method");
        foreach (var h in new[] { "tokens/s", "GFLOP/sample", "TFLOP/s", "of peak", "peak memory", "our buffers", "ok" })
            speed.AddColumn(new TableColumn(h).RightAligned());
        foreach (var m in result.Methods)
        {
            double tflops = m.AchievedTflops;
            speed.AddRow(Markup.Escape(m.Label), Num(m.TokensPerSecond, "N0"), Num(m.Flops.Average() / 1e9, "N0"), Num(tflops, "F1"),
                ctx.PeakTflops is { } peak ? Num(tflops / peak, "P1") : "-",
                Bytes(PeakMemory(m, ctx.BaselineUsed)), Bytes(m.PeakAllocatedBytes),
                $"{m.Statuses.Count(s => s == "ok")}/{m.Statuses.Length}");
        }
        console.Write(speed);
        if (ctx.PeakTflops is { } pk)
            console.MarkupLine($"peak: {pk:F0} TFLOP/s dense f16/bf16 (a matrix product's measured limit on H100/H200; --peak-tflops overrides)");
        if (ctx.BaselineUsed is { } bu)
            console.MarkupLine($"device memory in use before the model was uploaded: {Bytes(bu)} (counted in 'peak memory')");

        console.MarkupLine("[bold]FLOP model[/] (LongDep.Models.FlopModel; 2 FLOP per multiply-add):");
        int t = (int)Math.Min(ctx.Samples.Max(s => (long)s.Tokens.Length), o.Window);
        double ladmPass = FlopModel.LadmPass(ctx.Config, t);
        console.MarkupLine($"  LADM pass at T {t}: {ladmPass:E3} FLOP{AtPeak(ladmPass, ctx.PeakTflops)}");
        foreach (var m in result.Methods.Where(m => m.Method == "prolong"))
        {
            double reuse = m.Flops.Average(), reference = m.ReferenceFlops!.Average();
            console.MarkupLine($"  ProLong, mean per sample: {reuse:E3} FLOP with prefix reuse{AtPeak(reuse, ctx.PeakTflops)}; " +
                               $"{reference:E3} FLOP the reference's way (each pair 2l tokens){AtPeak(reference, ctx.PeakTflops)}");
        }

        foreach (var (method, phases) in result.Phases)
        {
            if (phases.Count == 0) continue;
            var table = new Table().Border(TableBorder.Rounded)
                .Title($"[bold]phases of one {Markup.Escape(method)} sample[/] (NVTX names; nested; layers as N)");
            table.AddColumn("phase");
            table.AddColumn(new TableColumn("seconds").RightAligned());
            table.AddColumn(new TableColumn("ranges").RightAligned());
            table.AddColumn(new TableColumn("of sample").RightAligned());
            double whole = phases.FirstOrDefault(p => p.Name.StartsWith("bench ", StringComparison.Ordinal))?.Seconds ?? phases.Max(p => p.Seconds);
            foreach (var p in phases)
                table.AddRow(Markup.Escape(p.Name), p.Seconds.ToString("F4", CultureInfo.InvariantCulture), p.Count.ToString("N0", CultureInfo.InvariantCulture),
                    Num(p.Seconds / whole, "P1"));
            console.Write(table);
        }
    }

    private static string AtPeak(double flops, double? peakTflops) =>
        peakTflops is { } p ? $" ({flops / (p * 1e12):F3} s at {p:F0} TFLOP/s)" : "";

    private static string Num(double? v, string format) =>
        v is { } d && double.IsFinite(d) ? d.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>Bytes as GiB with two decimals; "-" when unknown.</summary>
    public static string Bytes(long? bytes) =>
        bytes is { } b ? (b / (double)(1L << 30)).ToString("F2", CultureInfo.InvariantCulture) + " GiB" : "-";

    /// <summary>The run as JSON (written by hand: the trimmed bundle has no reflection-based serializer).</summary>
    public static string ToJson(BenchContext ctx, BenchResult result)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            var c = ctx.Config;
            var o = ctx.Options;
            w.WriteStartObject();
            w.WriteString("tool", "longdep bench");
            w.WriteNumber("format", 1);
            w.WriteStartObject("device");
            w.WriteString("kind", ctx.DeviceKind);
            w.WriteString("description", ctx.DeviceDescription);
            Number(w, "peak_tflops", ctx.PeakTflops);
            Number(w, "total_memory_bytes", ctx.TotalMemory);
            Number(w, "memory_in_use_before_model_bytes", ctx.BaselineUsed);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("source", ctx.ModelSource);
            w.WriteString("architecture", c.Architecture);
            w.WriteNumber("layers", c.Layers);
            w.WriteNumber("dim", c.Dim);
            w.WriteNumber("ff_dim", c.FfDim);
            w.WriteNumber("heads", c.Heads);
            w.WriteNumber("kv_heads", c.KvHeads);
            w.WriteNumber("head_dim", c.HeadDim);
            w.WriteNumber("vocab", c.VocabSize);
            w.WriteNumber("parameters", c.ParameterCount);
            w.WriteEndObject();
            w.WriteStartObject("settings");
            w.WriteNumber("window", o.Window);
            w.WriteNumber("chunk", o.Chunk);
            w.WriteNumber("pairs", o.Pairs);
            w.WriteNumber("threshold", o.Threshold);
            w.WriteNumber("seed", o.Seed);
            w.WriteNumber("warmup", o.Warmup);
            w.WriteEndObject();
            w.WriteString("sample_source", ctx.SampleSource);
            if (ctx.SamplesFile is { } sf) w.WriteString("samples_file", sf); else w.WriteNull("samples_file");
            w.WriteStartArray("samples");
            foreach (var s in ctx.Samples)
            {
                w.WriteStartObject();
                w.WriteNumber("index", s.Index);
                w.WriteString("id", s.Id);
                w.WriteNumber("tokens", s.Tokens.Length);
                w.WriteString("hash", s.Hash);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("methods");
            foreach (var m in result.Methods) WriteMethod(w, m, ctx);
            w.WriteEndArray();
            w.WriteStartObject("phases");
            foreach (var (method, phases) in result.Phases)
            {
                w.WriteStartArray(method);
                foreach (var p in phases)
                {
                    w.WriteStartObject();
                    w.WriteString("name", p.Name);
                    w.WriteNumber("seconds", p.Seconds);
                    w.WriteNumber("count", p.Count);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
            w.WriteStartObject("flop_model");
            int t = (int)Math.Min(ctx.Samples.Max(s => (long)s.Tokens.Length), o.Window);
            w.WriteNumber("ladm_pass_tokens", t);
            w.WriteNumber("ladm_pass", FlopModel.LadmPass(c, t));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteMethod(Utf8JsonWriter w, MethodResult m, BenchContext ctx)
    {
        w.WriteStartObject();
        w.WriteString("method", m.Method);
        Number(w, "d_afs", m.DAfs);
        Number(w, "d_cds", m.DCds);
        Number(w, "seconds_per_sample", m.SecondsPerSample);
        Number(w, "mean_seconds_per_sample", m.MeanSeconds);
        Number(w, "correlation", m.Correlation);
        Number(w, "tokens_per_second", m.TokensPerSecond);
        Number(w, "achieved_tflops", m.AchievedTflops);
        Number(w, "peak_fraction", ctx.PeakTflops is { } p ? m.AchievedTflops / p : null);
        Number(w, "flops_per_sample", m.Flops.Average());
        if (m.ReferenceFlops is { } rf) Number(w, "reference_flops_per_sample", rf.Average());
        Number(w, "peak_memory_bytes", PeakMemory(m, ctx.BaselineUsed));
        Number(w, "peak_allocated_bytes", m.PeakAllocatedBytes);
        Number(w, "device_used_max_bytes", m.DeviceUsedMaxBytes);
        Array(w, "seconds", m.Seconds.Select(x => (double?)x));
        Array(w, "scores", m.Scores);
        w.WriteStartArray("statuses");
        foreach (var s in m.Statuses) w.WriteStringValue(s);
        w.WriteEndArray();
        Array(w, "flops", m.Flops.Select(x => (double?)x));
        if (m.Layers is { } layers) Nested(w, "layers", layers);
        if (m.PairsUsed is { } pu) Array(w, "pairs_used", pu.Select(x => (double?)x));
        if (m.Chunks is { } ch) Array(w, "chunks", ch.Select(x => (double?)x));
        if (m.SinglePpl is { } sp) Nested(w, "single_ppl", sp);
        if (m.PairPpl is { } pp) Nested(w, "pair_ppl", pp);
        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    private static void Array(Utf8JsonWriter w, string name, IEnumerable<double?> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            if (v is { } d && double.IsFinite(d)) w.WriteNumberValue(d);
            else w.WriteNullValue();
        }
        w.WriteEndArray();
    }

    private static void Nested(Utf8JsonWriter w, string name, double[]?[] rows)
    {
        w.WriteStartArray(name);
        foreach (var row in rows)
        {
            if (row is null)
            {
                w.WriteNullValue();
                continue;
            }
            w.WriteStartArray();
            foreach (double d in row)
            {
                if (double.IsFinite(d)) w.WriteNumberValue(d);
                else w.WriteNullValue();
            }
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }
}
