using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;

namespace LongDep.Cli.Bench;

/// <summary>One method compared with the baseline on the samples both scored.</summary>
/// <param name="Samples">Samples both runs scored (a score on each side).</param>
/// <param name="Speedup">Baseline seconds per sample over ours.</param>
/// <param name="ScorePearson">Pearson of the scores (CDS or LDS) over the samples where both are numbers; NaN when undefined.</param>
/// <param name="DetailPearson">Pearson of the measurements under the scores: per-layer CDS (LADM) or ln perplexities (ProLong).</param>
/// <param name="DetailName">What <paramref name="DetailPearson"/> correlates.</param>
/// <param name="MaxRelativeDifference">Largest |ours − baseline| / |baseline| over the scores (and ProLong perplexities).</param>
public sealed record ComparisonRow(string Method, int? DAfs, int? DCds, int Samples, double OursSeconds, double BaselineSeconds,
    double Speedup, double ScorePearson, double DetailPearson, string DetailName, double MaxRelativeDifference)
{
    public string Label => Method == "ladm" ? $"LADM {DAfs}/{DCds}" : "ProLong";
}

/// <summary>One target of the performance issue: met, missed, or not applicable to this run (Pass null).</summary>
public sealed record TargetCheck(string Name, string Value, string Target, bool? Pass, string Note = "");

/// <summary>The comparison of a bench run with a baseline run.</summary>
public sealed record Comparison(IReadOnlyList<ComparisonRow> Rows, IReadOnlyList<TargetCheck> Checks)
{
    public bool AllApplicableMet => Checks.All(c => c.Pass != false);
}

/// <summary>
/// <c>longdep bench --compare</c>: speed ratio and Pearson per method between a <c>longdep bench --json</c> file and the
/// PyTorch baseline's JSON (bench/baseline), on the samples both scored (matched by index and checked by hash), and the
/// performance issue's targets: LADM ≥ 5× and ProLong ≥ 2.5× faster, Pearson ≥ 0.999, and — for TinyLlama's shape at
/// 32K tokens and 5000 pairs — LADM ≤ 0.32 s, ProLong ≤ 2.4 s per sample and peak memory ≤ 10 GB.
/// </summary>
public static class BenchComparison
{
    public const double LadmSpeedupTarget = 5.0;
    public const double ProLongSpeedupTarget = 2.5;
    public const double PearsonTarget = 0.999;
    public const double LadmSecondsTarget = 0.32;
    public const double ProLongSecondsTarget = 2.4;
    public const double MemoryTargetBytes = 10e9;

    /// <summary>Reads both files and compares them; bad files raise <see cref="InvalidDataException"/> naming the file.</summary>
    public static Comparison CompareFiles(string benchPath, string baselinePath)
    {
        using var bench = Parse(benchPath, "a 'longdep bench --json' output");
        using var baseline = Parse(baselinePath, "a bench/baseline/baseline.py output");
        try
        {
            return Compare(bench.RootElement, baseline.RootElement);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"{benchPath} / {baselinePath}: {e.Message}", e);
        }
    }

    private static JsonDocument Parse(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist (expected {what})", path);
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not JSON ({e.Message}); expected {what}", e);
        }
    }

    public static Comparison Compare(JsonElement bench, JsonElement baseline)
    {
        var ours = SampleIndex(bench, "bench");
        var theirs = SampleIndex(baseline, "baseline");
        foreach (var (index, hash) in theirs)
            if (ours.TryGetValue(index, out var h) && h.Hash != hash.Hash)
                throw new InvalidDataException($"sample {index} differs between the runs (hash {h.Hash} vs {hash.Hash}): the baseline must read the file that 'longdep bench --write-samples' wrote");

        var rows = new List<ComparisonRow>();
        var checks = new List<TargetCheck>();
        foreach (var b in Methods(baseline, "baseline"))
        {
            var match = Methods(bench, "bench").FirstOrDefault(m => SameMethod(m, b));
            if (match.ValueKind == JsonValueKind.Undefined) continue;
            rows.Add(Row(match, b, ours, theirs));
        }
        if (rows.Count == 0)
            throw new InvalidDataException("no method was run by both: the baseline's methods (and LADM settings) must appear in the bench run");

        foreach (var r in rows)
        {
            bool main = r.Method == "prolong" || (r.DAfs == 4 && r.DCds == 4);
            if (main)
            {
                double target = r.Method == "ladm" ? LadmSpeedupTarget : ProLongSpeedupTarget;
                checks.Add(new TargetCheck($"{r.Label} speed-up over the baseline", $"{r.Speedup:F2}x", $">= {target:F1}x",
                    double.IsFinite(r.Speedup) ? r.Speedup >= target : null));
            }
            bool scoreDefined = double.IsFinite(r.ScorePearson);
            double pearson = scoreDefined ? r.ScorePearson : r.DetailPearson;
            string note = scoreDefined ? "" : $"scores do not vary across the samples (Pearson undefined); checked on {r.DetailName} instead";
            checks.Add(new TargetCheck($"{r.Label} Pearson with the baseline ({(scoreDefined ? "scores" : r.DetailName)})",
                double.IsFinite(pearson) ? pearson.ToString("F5", CultureInfo.InvariantCulture) : "undefined", $">= {PearsonTarget}",
                double.IsFinite(pearson) ? pearson >= PearsonTarget : null, note));
        }
        checks.AddRange(AbsoluteTargets(bench));
        return new Comparison(rows, checks);
    }

    /// <summary>The issue's absolute targets, which hold for TinyLlama's shape at 32K tokens, 5000 pairs, on one H100.</summary>
    public static List<TargetCheck> AbsoluteTargets(JsonElement bench)
    {
        var checks = new List<TargetCheck>();
        var model = bench.GetProperty("model");
        var settings = bench.GetProperty("settings");
        bool tinyLlama = Int(model, "layers") == 22 && Int(model, "dim") == 2048 && Int(model, "ff_dim") == 5632 &&
                         Int(model, "heads") == 32 && Int(model, "kv_heads") == 4;
        bool at32K = Int(settings, "window") == 32768 && bench.GetProperty("samples").EnumerateArray().All(s => Int(s, "tokens") >= 32768);
        bool pairs5000 = Int(settings, "pairs") == 5000 && Int(settings, "chunk") == 128;
        string why = !tinyLlama ? "not TinyLlama's shape" : !at32K ? "samples are not 32K tokens" : "";
        foreach (var m in Methods(bench, "bench"))
        {
            string method = m.GetProperty("method").GetString()!;
            double seconds = Dbl(m, "seconds_per_sample");
            if (method == "ladm" && Int(m, "d_afs") == 4 && Int(m, "d_cds") == 4)
                checks.Add(new TargetCheck("LADM 4/4 seconds per sample", $"{seconds:F3}", $"<= {LadmSecondsTarget}",
                    why == "" ? seconds <= LadmSecondsTarget : null, why));
            if (method == "prolong")
            {
                string w = why != "" ? why : pairs5000 ? "" : "not 5000 pairs of 128 tokens";
                checks.Add(new TargetCheck("ProLong seconds per sample", $"{seconds:F3}", $"<= {ProLongSecondsTarget}",
                    w == "" ? seconds <= ProLongSecondsTarget : null, w));
            }
        }
        double peak = Methods(bench, "bench").Select(m => Dbl(m, "peak_memory_bytes")).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
        checks.Add(new TargetCheck("peak GPU memory", double.IsFinite(peak) ? $"{peak / 1e9:F2} GB" : "not measured", "<= 10 GB",
            why == "" && double.IsFinite(peak) ? peak <= MemoryTargetBytes : null, double.IsFinite(peak) ? why : "no GPU in this run"));
        return checks;
    }

    private static bool SameMethod(JsonElement a, JsonElement b) =>
        a.GetProperty("method").GetString() == b.GetProperty("method").GetString() &&
        (a.GetProperty("method").GetString() != "ladm" || (Int(a, "d_afs") == Int(b, "d_afs") && Int(a, "d_cds") == Int(b, "d_cds")));

    private static ComparisonRow Row(JsonElement ours, JsonElement theirs, Dictionary<long, (int Position, string Hash)> oursIndex,
        Dictionary<long, (int Position, string Hash)> theirsIndex)
    {
        string method = ours.GetProperty("method").GetString()!;
        var common = theirsIndex.Keys.Where(oursIndex.ContainsKey).OrderBy(k => k).ToList();
        var a = Doubles(ours, "scores");
        var b = Doubles(theirs, "scores");
        var xs = new List<double?>();
        var ys = new List<double?>();
        double maxRel = 0;
        foreach (long index in common)
        {
            double? x = At(a, oursIndex[index].Position), y = At(b, theirsIndex[index].Position);
            xs.Add(x);
            ys.Add(y);
            if (x is { } xv && y is { } yv && yv != 0) maxRel = Math.Max(maxRel, Math.Abs(xv - yv) / Math.Abs(yv));
        }
        double scorePearson = BenchStatistics.Pearson(xs, ys);
        int scored = xs.Zip(ys).Count(p => p.First is not null && p.Second is not null);

        // The measurements under the score: per-layer CDS, or ln of every perplexity.
        var dx = new List<double?>();
        var dy = new List<double?>();
        string detail;
        if (method == "ladm")
        {
            detail = "per-layer CDS";
            Collect("layers", v => v, relative: false);
        }
        else
        {
            detail = "ln single_ppl and pair_ppl";
            Collect("single_ppl", v => v > 0 ? Math.Log(v) : null, relative: true);
            Collect("pair_ppl", v => v > 0 ? Math.Log(v) : null, relative: true);
        }
        void Collect(string field, Func<double, double?> map, bool relative)
        {
            var ra = Rows(ours, field);
            var rb = Rows(theirs, field);
            if (ra is null || rb is null) return;
            foreach (long index in common)
            {
                var rowA = At(ra, oursIndex[index].Position);
                var rowB = At(rb, theirsIndex[index].Position);
                if (rowA is null || rowB is null || rowA.Length != rowB.Length) continue;
                for (int k = 0; k < rowA.Length; k++)
                {
                    dx.Add(rowA[k] is { } u ? map(u) : null);
                    dy.Add(rowB[k] is { } v ? map(v) : null);
                    if (relative && rowA[k] is { } x && rowB[k] is { } y && y != 0)
                        maxRel = Math.Max(maxRel, Math.Abs(x - y) / Math.Abs(y));
                }
            }
        }
        double oursSeconds = Dbl(ours, "seconds_per_sample"), theirsSeconds = Dbl(theirs, "seconds_per_sample");
        return new ComparisonRow(method, method == "ladm" ? Int(ours, "d_afs") : null, method == "ladm" ? Int(ours, "d_cds") : null,
            scored, oursSeconds, theirsSeconds, theirsSeconds / oursSeconds, scorePearson, BenchStatistics.Pearson(dx, dy), detail, maxRel);
    }

    private static T? At<T>(List<T> list, int position) => position < list.Count ? list[position] : default;

    private static Dictionary<long, (int Position, string Hash)> SampleIndex(JsonElement root, string which)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("samples", out var samples) || samples.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"the {which} file has no 'samples' array");
        var map = new Dictionary<long, (int, string)>();
        int position = 0;
        foreach (var s in samples.EnumerateArray())
        {
            long index = s.GetProperty("index").GetInt64();
            if (!map.TryAdd(index, (position, s.GetProperty("hash").GetString() ?? "")))
                throw new InvalidDataException($"the {which} file lists sample {index} twice");
            position++;
        }
        return map;
    }

    private static IEnumerable<JsonElement> Methods(JsonElement root, string which)
    {
        if (!root.TryGetProperty("methods", out var methods) || methods.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"the {which} file has no 'methods' array");
        return methods.EnumerateArray();
    }

    private static int? Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? (int)v.GetDouble() : null;

    private static double Dbl(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN;

    private static List<double?> Doubles(JsonElement e, string name)
    {
        var list = new List<double?>();
        if (!e.TryGetProperty(name, out var arr) || arr.ValueKind != JsonValueKind.Array) return list;
        foreach (var v in arr.EnumerateArray()) list.Add(v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null);
        return list;
    }

    private static List<double?[]?>? Rows(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var arr) || arr.ValueKind != JsonValueKind.Array) return null;
        var rows = new List<double?[]?>();
        foreach (var row in arr.EnumerateArray())
            rows.Add(row.ValueKind == JsonValueKind.Array
                ? row.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number ? v.GetDouble() : (double?)null).ToArray()
                : null);
        return rows;
    }

    public static void Print(TextWriter output, Comparison c, bool wide)
    {
        var console = BenchReport.Console(output, wide);
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]longdep bench vs the PyTorch baseline (same device, model, samples)[/]");
        table.AddColumn("Method");
        foreach (var h in new[] { "samples", "ours s/sample", "baseline s/sample", "speed-up", "Pearson (scores)", "Pearson (detail)", "max rel. diff" })
            table.AddColumn(new TableColumn(h).RightAligned());
        foreach (var r in c.Rows)
            table.AddRow(Markup.Escape(r.Label), r.Samples.ToString(CultureInfo.InvariantCulture), F(r.OursSeconds, "F3"), F(r.BaselineSeconds, "F3"),
                F(r.Speedup, "F2") + "x", F(r.ScorePearson, "F5"), $"{F(r.DetailPearson, "F5")} ({Markup.Escape(r.DetailName)})", F(r.MaxRelativeDifference, "E2"));
        console.Write(table);
        var targets = new Table().Border(TableBorder.Rounded).Title("[bold]targets (performance issue)[/]");
        foreach (var h in new[] { "target", "value", "wanted", "verdict", "note" }) targets.AddColumn(h);
        foreach (var t in c.Checks)
            targets.AddRow(Markup.Escape(t.Name), Markup.Escape(t.Value), Markup.Escape(t.Target),
                t.Pass switch { true => "[green]met[/]", false => "[red]MISSED[/]", null => "n/a" }, Markup.Escape(t.Note));
        console.Write(targets);
        int met = c.Checks.Count(t => t.Pass == true), missed = c.Checks.Count(t => t.Pass == false);
        console.MarkupLine($"targets: {met} met, {missed} missed, {c.Checks.Count - met - missed} not applicable");
    }

    private static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    public static string ToJson(Comparison c)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            void N(string name, double? v)
            {
                if (v is { } d && double.IsFinite(d)) w.WriteNumber(name, d); else w.WriteNull(name);
            }
            w.WriteStartObject();
            w.WriteString("tool", "longdep bench --compare");
            w.WriteStartArray("methods");
            foreach (var r in c.Rows)
            {
                w.WriteStartObject();
                w.WriteString("method", r.Method);
                N("d_afs", r.DAfs);
                N("d_cds", r.DCds);
                w.WriteNumber("samples", r.Samples);
                N("seconds_per_sample", r.OursSeconds);
                N("baseline_seconds_per_sample", r.BaselineSeconds);
                N("speedup", r.Speedup);
                N("pearson_scores", r.ScorePearson);
                N("pearson_detail", r.DetailPearson);
                w.WriteString("detail", r.DetailName);
                N("max_relative_difference", r.MaxRelativeDifference);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("targets");
            foreach (var t in c.Checks)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("value", t.Value);
                w.WriteString("target", t.Target);
                if (t.Pass is { } p) w.WriteBoolean("met", p); else w.WriteNull("met");
                w.WriteString("note", t.Note);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteBoolean("all_applicable_met", c.AllApplicableMet);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
