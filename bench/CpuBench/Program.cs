using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLama;
using LLama.Common;
using LLama.Native;
using LongDep.Core.Probes;
using LongDep.Models;
using LongDep.Models.Cpu;

namespace LongDep.Bench.Cpu;

/// <summary>
/// The CPU benchmark. <c>run</c> prepares the files (LLamaSharp's quantizer makes BF16, Q8_0 and Q4_K_M from the F16
/// file <c>make-model</c> wrote), then for every file type and sequence length runs, interleaved and each in its own
/// process (so peak RSS is each engine's own): longdep's CPU forward, the native llama.cpp driver, and LLamaSharp. It
/// prints one markdown table with medians. The other verbs are what those processes run.
/// </summary>
public static class Program
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: CpuBench run --f16 FILE --dir DIR --driver PATH [--longdep ./longdep] [--types F16,BF16,Q8_0,Q4_K_M] [--tokens 512,2048] [--threads 2] [--reps 3] [--prolong-type F16] [--prolong-tokens 2048] [--chunk 128] [--ladm-chunk 64] [--prolong-batched] [--no-forward] [--no-llamasharp]");
            Console.Error.WriteLine("       CpuBench ours|llamasharp forward|prolong|ladm MODEL IDS THREADS [CHUNK]   (one measurement, one JSON line)");
            Console.Error.WriteLine("       CpuBench quantize SRC DST F16|BF16|Q8_0|Q4_K_M");
            return 2;
        }
        try
        {
            return args[0] switch
            {
                "ours" => Ours(args),
                "llamasharp" => LLamaSharpRun(args),
                "quantize" => Quantize(args[1], args[2], args[3]),
                "run" => Run(args),
                _ => throw new ArgumentException($"unknown verb '{args[0]}'"),
            };
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or FormatException)
        {
            Console.Error.WriteLine($"CpuBench: {e.Message}");
            return 1;
        }
    }

    private static int[] ReadIds(string path) =>
        File.ReadAllText(path).Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, Inv)).ToArray();

    /// <summary>The process's peak resident set (VmHWM) in KB.</summary>
    private static long PeakRssKb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], Inv);
        return -1;
    }

    /// <summary>The machine's 1-minute load average.</summary>
    private static double LoadAverage() => double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], Inv);

    private static void Emit(string engine, string mode, int tokens, int threads, double load, double forward, IReadOnlyList<double> nll)
    {
        var o = new JsonObject
        {
            ["engine"] = engine, ["mode"] = mode, ["tokens"] = tokens, ["threads"] = threads, ["load_s"] = load,
            ["forward_s"] = forward, ["nll_sum"] = nll.Sum(), ["nll_count"] = nll.Count, ["peak_rss_kb"] = PeakRssKb(),
            ["nll"] = new JsonArray(nll.Select(x => (JsonNode)x).ToArray()),
        };
        Console.WriteLine(o.ToJsonString());
    }

    // ------------------------------------------------------------------ longdep

    private static int Ours(string[] a)
    {
        string mode = a[1], model = a[2];
        var ids = ReadIds(a[3]);
        int threads = int.Parse(a[4], Inv), chunk = a.Length > 5 ? int.Parse(a[5], Inv) : 128;
        var sw = Stopwatch.StartNew();
        var loaded = ModelLoader.Load(model);
        var forward = new CpuForward(loaded.Weights, threads, CpuMath.Fast);
        double load = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var nll = new List<double>();
        switch (mode)
        {
            case "forward":
            {
                var targets = new int[ids.Length];
                for (int t = 0; t + 1 < ids.Length; t++) targets[t] = ids[t + 1];
                targets[^1] = -1;
                var r = forward.TokenNll(ids, targets, prefix: null, out _, keepCache: false);
                nll.AddRange(r.Take(ids.Length - 1));
                break;
            }
            case "prolong":
            {
                int count = ids.Length / chunk;
                var chunks = Enumerable.Range(0, count).Select(j => ids.AsSpan(j * chunk, chunk).ToArray()).ToArray();
                var pairs = new List<ChunkPair>();
                for (int j = 0; j < count; j++)
                    for (int i = j + 1; i < count; i++) pairs.Add(new ChunkPair(i, j));
                using var probe = new CpuProLongProbe(forward);
                var m = probe.Measure(chunks, pairs);
                // The driver's order: chunk j's pass, then its pairs (i, j), i > j; each as the mean NLL (ln ppl).
                for (int j = 0; j < count; j++)
                {
                    nll.Add(Math.Log(m.SinglePpl[j]));
                    for (int k = 0; k < pairs.Count; k++)
                        if (pairs[k].J == j) nll.Add(Math.Log(m.PairPpl[k]));
                }
                break;
            }
            case "ladm":
            {
                var schedule = LadmSchedule.Create(ids.Length, chunk, 4, 4);
                if (schedule.Spans.Count == 0)
                    throw new ArgumentException($"LADM 4:4 with chunk {chunk} scores no span of {ids.Length} tokens (it needs {LadmSchedule.MinimumTokens(chunk, 4)}); pass a smaller chunk");
                using var probe = new CpuLadmProbe(forward);
                var m = probe.Measure(ids, schedule);
                nll.Add(schedule.Spans.Count); // query spans scored
                nll.Add(m.Pfs.Sum(layer => layer.Sum(span => span.Sum()))); // every PFS, summed: a check that they were computed
                break;
            }
            default: throw new ArgumentException($"unknown mode '{mode}'");
        }
        Emit("longdep", mode, ids.Length, threads, load, sw.Elapsed.TotalSeconds, nll);
        return 0;
    }

    // ------------------------------------------------------------------ LLamaSharp (its prebuilt llama.cpp)

    private static int LLamaSharpRun(string[] a)
    {
        string mode = a[1], model = a[2];
        var ids = ReadIds(a[3]);
        int threads = int.Parse(a[4], Inv), chunk = a.Length > 5 ? int.Parse(a[5], Inv) : 128;
        NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        var sw = Stopwatch.StartNew();
        int n = ids.Length, count = n / chunk;
        var p = new ModelParams(model)
        {
            ContextSize = (uint)(mode == "prolong" ? count * chunk + 2 * chunk : n),
            BatchSize = (uint)(mode == "prolong" ? chunk : n),
            UBatchSize = (uint)(mode == "prolong" ? chunk : n),
            Threads = threads,
            BatchThreads = threads,
            SeqMax = (uint)(mode == "prolong" ? count + 1 : 1),
            GpuLayerCount = 0,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        int vocab = weights.Vocab.Count;
        double load = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var nll = new List<double>();
        var batch = new LLamaBatch();
        double Run(int seq, int first, ReadOnlySpan<int> tok, bool each)
        {
            batch.Clear();
            for (int t = 0; t < tok.Length; t++) batch.Add((LLamaToken)tok[t], first + t, (LLamaSeqId)seq, true);
            var r = ctx.NativeHandle.Decode(batch);
            if (r != DecodeResult.Ok) throw new InvalidOperationException($"decode: {r}");
            double s = 0;
            for (int t = 0; t + 1 < tok.Length; t++)
            {
                double x = Nll(ctx.NativeHandle.GetLogitsIth(t), vocab, tok[t + 1]);
                if (each) nll.Add(x);
                s += x;
            }
            return s;
        }
        if (mode == "forward") Run(0, 0, ids, each: true);
        else if (mode == "prolong")
        {
            for (int j = 0; j < count; j++)
            {
                nll.Add(Run(j, 0, ids.AsSpan(j * chunk, chunk), false) / (chunk - 1));
                for (int i = j + 1; i < count; i++)
                {
                    ctx.NativeHandle.MemorySequenceRemove((LLamaSeqId)count, -1, -1);
                    ctx.NativeHandle.MemorySequenceCopy((LLamaSeqId)j, (LLamaSeqId)count, 0, chunk);
                    nll.Add(Run(count, chunk, ids.AsSpan(i * chunk, chunk), false) / (chunk - 1));
                    ctx.NativeHandle.MemorySequenceRemove((LLamaSeqId)count, -1, -1);
                }
            }
        }
        else throw new ArgumentException($"LLamaSharp runs forward and prolong, not '{mode}'");
        Emit("llamasharp", mode, n, threads, load, sw.Elapsed.TotalSeconds, nll);
        return 0;
    }

    private static double Nll(Span<float> logits, int vocab, int target)
    {
        double max = double.NegativeInfinity;
        for (int i = 0; i < vocab; i++) max = Math.Max(max, logits[i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.Exp(logits[i] - max);
        return max + Math.Log(sum) - logits[target];
    }

    private static int Quantize(string src, string dst, string type)
    {
        var ftype = type switch
        {
            "F16" => LLamaFtype.MOSTLY_F16,
            "BF16" => LLamaFtype.MOSTLY_BF16,
            "Q8_0" => LLamaFtype.MOSTLY_Q8_0,
            "Q4_K_M" => LLamaFtype.MOSTLY_Q4_K_M,
            _ => throw new ArgumentException($"no quantization type '{type}' (F16, BF16, Q8_0, Q4_K_M)"),
        };
        NativeApi.llama_empty_call(); // loads LLamaSharp's native library (its resolver picks the CPU backend)
        if (!LLamaQuantizer.Quantize(src, dst, ftype, Environment.ProcessorCount, allowRequantize: true, quantizeOutputTensor: false))
            throw new InvalidOperationException($"LLamaSharp could not quantize {src} to {type}");
        Console.WriteLine($"wrote {dst} ({type})");
        return 0;
    }

    // ------------------------------------------------------------------ the interleaved run

    private sealed record Result(string Engine, double Load, double Forward, long PeakKb, double[] Nll, double LoadAverage);

    private static int Run(string[] args)
    {
        string Opt(string name, string? fallback = null)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback ?? throw new ArgumentException($"{name} is required");
        }
        string f16 = Opt("--f16"), dir = Opt("--dir"), driver = Opt("--driver"), longdep = Opt("--longdep", "./longdep");
        var types = Opt("--types", "F16,BF16,Q8_0,Q4_K_M").Split(',');
        var lengths = Opt("--tokens", "512,2048").Split(',').Select(s => int.Parse(s, Inv)).ToArray();
        int threads = int.Parse(Opt("--threads", "2"), Inv), reps = int.Parse(Opt("--reps", "3"), Inv);
        int chunk = int.Parse(Opt("--chunk", "128"), Inv);
        int ladmChunk = int.Parse(Opt("--ladm-chunk", "64"), Inv); // 4:4 at 2048 tokens needs chunk ≤ 64 for a span
        string? prolongType = Opt("--prolong-type", "none") is var pt && pt != "none" ? pt : null;
        int prolongTokens = int.Parse(Opt("--prolong-tokens", "2048"), Inv);
        bool llamaSharp = !args.Contains("--no-llamasharp");
        bool prolongBatched = args.Contains("--prolong-batched");
        if (args.Contains("--no-forward")) types = [];
        Directory.CreateDirectory(dir);
        string self = Environment.ProcessPath!;
        string selfDll = typeof(Program).Assembly.Location;

        string FileOf(string type)
        {
            string path = Path.Combine(dir, $"tinyllama-{type.ToLowerInvariant()}.gguf");
            if (type == "F16") return f16;
            if (File.Exists(path)) return path;
            // BF16 and F32: longdep's own writer (the same seeded weights as the F16 file, rounded from float32; LLamaSharp's
            // quantizer refuses MOSTLY_BF16); the quantized types: LLamaSharp's quantizer from the F16 file.
            if (type is "BF16" or "F32") Child(longdep, null, ["make-model", "--shape", "tinyllama", "--dtype", type.ToLowerInvariant(), "-o", path]);
            else Child(self, selfDll, ["quantize", f16, path, type]);
            return path;
        }
        string IdsOf(int n)
        {
            string path = Path.Combine(dir, $"ids-{n}.txt");
            var rng = new Random(5);
            File.WriteAllText(path, string.Join('\n', Enumerable.Range(0, n).Select(_ => rng.Next(32000).ToString(Inv))));
            return path;
        }

        var table = new StringBuilder();
        table.AppendLine($"CPU benchmark, {DateTime.UtcNow:yyyy-MM-dd}, {threads} threads, {Environment.ProcessorCount} processors, medians of {reps} interleaved runs");
        table.AppendLine();
        table.AppendLine("| file | tokens | longdep tok/s | llama.cpp native tok/s | ratio | LLamaSharp tok/s | longdep whole s | native whole s | whole ratio | peak RSS longdep | peak RSS native | RSS ratio | max abs ΔNLL | load avg |");
        table.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var type in types)
        {
            string model = FileOf(type);
            foreach (int n in lengths)
            {
                string ids = IdsOf(n);
                var runs = new Dictionary<string, List<Result>> { ["longdep"] = [], ["native"] = [], ["llamasharp"] = [] };
                for (int r = 0; r < reps; r++)
                {
                    runs["longdep"].Add(Measure(self, selfDll, ["ours", "forward", model, ids, $"{threads}"]));
                    runs["native"].Add(Measure(driver, null, ["forward", model, ids, $"{threads}"]));
                    if (llamaSharp) runs["llamasharp"].Add(Measure(self, selfDll, ["llamasharp", "forward", model, ids, $"{threads}"]));
                }
                table.AppendLine(Row(type, n, runs));
                Console.Error.WriteLine(table.ToString().Split('\n')[^2]);
            }
        }
        if (prolongType is not null)
        {
            string model = FileOf(prolongType), ids = IdsOf(prolongTokens);
            int count = prolongTokens / chunk;
            table.AppendLine();
            table.AppendLine($"ProLong, one document of {prolongTokens} tokens, chunk {chunk}: {count} chunks, all {count * (count - 1) / 2} pairs, {prolongType}");
            table.AppendLine();
            table.AppendLine("| engine | seconds (median) | runs | longdep speed-up | peak RSS | max abs Δ ln ppl | load avg |");
            table.AppendLine("|---|---|---|---|---|---|---|");
            var ours = new List<Result>();
            var native = new List<Result>();
            var batched = new List<Result>();
            for (int r = 0; r < reps; r++)
            {
                ours.Add(Measure(self, selfDll, ["ours", "prolong", model, ids, $"{threads}", $"{chunk}"]));
                native.Add(Measure(driver, null, ["prolong", model, ids, $"{threads}", $"{chunk}"]));
                if (prolongBatched) batched.Add(Measure(driver, null, ["prolong-batched", model, ids, $"{threads}", $"{chunk}"]));
            }
            double o = Median(ours.Select(x => x.Forward));
            string Runs(List<Result> rs) => string.Join(", ", rs.Select(x => x.Forward.ToString("F1", Inv)));
            table.AppendLine($"| longdep (prefix-KV reuse, pairs of a chunk batched) | {o:F2} | {Runs(ours)} | | {Median(ours.Select(x => (double)x.PeakKb)) / 1024:F0} MB | | {LoadRange(ours)} |");
            foreach (var (label, rs) in new[] { ("llama.cpp native (KV copied per pair)", native), ("llama.cpp native (KV copied, pairs of a chunk in one decode)", batched) })
            {
                if (rs.Count == 0) continue;
                double nat = Median(rs.Select(x => x.Forward));
                table.AppendLine($"| {label} | {nat:F2} | {Runs(rs)} | {nat / o:F2}× | {Median(rs.Select(x => (double)x.PeakKb)) / 1024:F0} MB | {MaxDiff(ours[0].Nll, rs[0].Nll):E2} | {LoadRange(rs)} |");
            }
            var ladm = Measure(self, selfDll, ["ours", "ladm", model, ids, $"{threads}", $"{ladmChunk}"]);
            table.AppendLine();
            table.AppendLine($"LADM (longdep only; llama.cpp has no attention probabilities), {prolongTokens} tokens, chunk {ladmChunk}, 4:4 ({ladm.Nll.FirstOrDefault():F0} query spans), {prolongType}: " +
                             $"{ladm.Forward:F2} s ({prolongTokens / ladm.Forward:F1} tok/s), load {ladm.Load:F2} s, peak RSS {ladm.PeakKb / 1024} MB, load avg {ladm.LoadAverage:F1}");
        }
        Console.WriteLine(table.ToString());
        return 0;
    }

    private static string Row(string type, int n, Dictionary<string, List<Result>> runs)
    {
        var ours = runs["longdep"];
        var native = runs["native"];
        var ls = runs["llamasharp"];
        double oF = Median(ours.Select(x => x.Forward)), nF = Median(native.Select(x => x.Forward));
        double oW = Median(ours.Select(x => x.Load + x.Forward)), nW = Median(native.Select(x => x.Load + x.Forward));
        long oM = (long)Median(ours.Select(x => (double)x.PeakKb)), nM = (long)Median(native.Select(x => (double)x.PeakKb));
        string lsRate = ls.Count > 0 ? $"{n / Median(ls.Select(x => x.Forward)):F1}" : "–";
        return $"| {type} | {n} | {n / oF:F1} | {n / nF:F1} | {nF / oF:F2}× | {lsRate} | {oW:F1} | {nW:F1} | {nW / oW:F2}× | {oM / 1024} MB | {nM / 1024} MB | {(double)oM / nM:F2} | {MaxDiff(ours[0].Nll, native[0].Nll):E2} | {LoadRange([.. ours, .. native, .. ls])} |";
    }

    /// <summary>The 1-minute load averages seen at the end of the runs, as "min–max".</summary>
    private static string LoadRange(IReadOnlyCollection<Result> rs) =>
        rs.Count == 0 ? "–" : $"{rs.Min(x => x.LoadAverage):F1}–{rs.Max(x => x.LoadAverage):F1}";

    private static double MaxDiff(double[] a, double[] b) =>
        a.Length != b.Length ? double.NaN : a.Zip(b, (x, y) => Math.Abs(x - y)).DefaultIfEmpty(0).Max();

    private static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static Result Measure(string exe, string? dll, string[] args)
    {
        string line = Child(exe, dll, args).Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.StartsWith('{'));
        var o = JsonNode.Parse(line)!;
        var r = new Result((string)o["engine"]!, (double)o["load_s"]!, (double)o["forward_s"]!, (long)o["peak_rss_kb"]!,
            o["nll"]!.AsArray().Select(x => (double)x!).ToArray(), LoadAverage());
        Console.Error.WriteLine($"  {DateTime.UtcNow:HH:mm:ss} {r.Engine} {string.Join(' ', args.Take(2))} {Path.GetFileName(args.Length > 2 ? args[2] : "")}: " +
                                $"load {r.Load:F2} s, forward {r.Forward:F2} s, peak {r.PeakKb / 1024} MB, load avg {r.LoadAverage:F1}");
        return r;
    }

    private static string Child(string exe, string? dll, string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false };
        if (dll is not null && Path.GetFileNameWithoutExtension(exe) is "dotnet") psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', args)} exited with {p.ExitCode}");
        return output;
    }
}
