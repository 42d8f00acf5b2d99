using System.CommandLine;
using LongDep.Core.Pipeline;
using System.Globalization;
using System.Text.Json;
using LongDep.Cli.Bench;
using LongDep.Cli.Runtime;
using LongDep.Models;
using LongDep.Models.Synthetic;
using LongDep.Models.Tokenization;

namespace LongDep.Cli.Commands;

/// <summary>
/// <c>longdep bench</c>: times LADM (the paper's Table 5 settings) and ProLong on N samples with a model of a named shape
/// (random weights, made here) or a given model, and reports per-sample medians, the Table 5 correlations, tokens/s,
/// achieved TFLOP/s against the device's peak, peak memory and a per-phase breakdown; <c>--json</c> writes the same for
/// scripts, <c>--write-samples</c> exports the samples with their ProLong draws for the PyTorch baseline, and
/// <c>--compare</c> checks a run against the baseline and the performance issue's targets.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = $"random model of this shape: {string.Join(", ", RandomModel.ShapeNames)}", DefaultValueFactory = _ => "tinyllama" };
        var model = new Option<string?>("--model") { Description = "a GGUF file or Hugging Face folder instead of a random model (e.g. from longdep make-model)" };
        var modelSeed = NumericOption.Whole("--model-seed", "weights seed of the random model (make-model's --seed)", 1234L, long.MinValue, long.MaxValue);
        var input = new Option<string?>("--input") { Description = "take the samples from this corpus (first N good records) instead of making them" };
        var samples = NumericOption.Whole("--samples", "N: samples timed per method", 8, 1, 100000);
        var proLongSamples = NumericOption.WholeOrNone("--prolong-samples", "ProLong on the first M samples only (default: all N)", 1, 100000);
        var tokens = NumericOption.Whole("--tokens", "tokens per synthetic sample; at least 2 × --chunk", 32768, 4, 1 << 22);
        var window = NumericOption.WholeOrNone("--window", "W (default: --tokens, or 32768 with --input)", 4, ScoreSettings.MaxWindow);
        var chunk = NumericOption.Whole("--chunk", "l: span / chunk length", 128, 2, ScoreSettings.MaxWindow / 2);
        var pairs = new Option<string>("--pairs") { Description = "ProLong pairs per sample (a number or 'all')", DefaultValueFactory = _ => "5000" };
        var threshold = NumericOption.Real("--threshold", "ProLong δ", 0.1, -1e6, 1e6);
        var seed = NumericOption.Whole("--seed", "seed of the synthetic samples and of the ProLong draws", 11L, long.MinValue, long.MaxValue);
        var methods = new Option<string>("--methods") { Description = "ladm, prolong or ladm,prolong", DefaultValueFactory = _ => "ladm,prolong" };
        var settings = new Option<string>("--ladm-settings") { Description = "LADM d_afs:d_cds settings, the first is the correlation's reference", DefaultValueFactory = _ => "4:4,2:4,4:2,2:2" };
        var device = new Option<string>("--device") { Description = "cuda, cuda:N, cpu or auto", DefaultValueFactory = _ => "auto" };
        var threads = NumericOption.Whole("--threads", "CPU threads (0: all cores)", 0, 0, 4096);
        var pairBatch = NumericOption.Whole("--pair-batch", "GPU: ProLong pairs per batch", 128, 1, 1 << 16);
        var bf16 = new Option<bool>("--bf16") { Description = "GPU: weights in bf16 instead of f16" };
        var kernels = KernelsOption.Create();
        var warmup = NumericOption.Whole("--warmup", "untimed runs of the first sample before each method", 1, 0, 100);
        var noPhases = new Option<bool>("--no-phases") { Description = "skip the profiled run behind the per-phase table" };
        var peak = NumericOption.RealOrNone("--peak-tflops", "the device's peak TFLOP/s (default: known GPUs; H100/H200 790)", 0, 1e6, minExclusive: true);
        var json = new Option<string?>("--json") { Description = "write the figures as JSON to this file" };
        var writeSamples = new Option<string?>("--write-samples") { Description = "export the samples and their ProLong draws (JSON lines) for bench/baseline" };
        var noRun = new Option<bool>("--no-run") { Description = "with --write-samples: write the samples and stop (e.g. a corpus for longdep score)" };
        var compare = new Option<string?>("--compare") { Description = "compare with this baseline JSON (bench/baseline/baseline.py) and check the targets" };
        var results = new Option<string?>("--results") { Description = "with --compare: a 'longdep bench --json' file to compare instead of running now" };
        var compareJson = new Option<string?>("--compare-json") { Description = "with --compare: write the comparison as JSON to this file" };
        var strict = new Option<bool>("--strict") { Description = "with --compare: exit 1 when a target is missed" };
        var kernelTiming = new Option<bool>("--kernel-timing")
        {
            Description = "GPU: time one layer's O(T^2) kernels (attention, both PFS passes) at the shape's heads and --tokens, " +
                          "for both kernel sets (or --kernel-set), instead of whole samples",
        };
        var cmd = new Command("bench", "Time LADM (Table 5 settings) and ProLong per sample on a GPU or the CPU; compare with the PyTorch baseline.")
        {
            shape, model, modelSeed, input, samples, proLongSamples, tokens, window, chunk, pairs, threshold, seed, methods, settings, device, threads,
            pairBatch, bf16, kernels, warmup, noPhases, peak, json, writeSamples, noRun, compare, results, compareJson, strict, kernelTiming,
        };
        cmd.Add(PackBench.Create());
        cmd.SetAction(r =>
        {
            TextWriter output = r.InvocationConfiguration.Output;
            bool wide = !ReferenceEquals(output, Console.Out) || Console.IsOutputRedirected;
            string? baseline = r.GetValue(compare);
            if (r.GetValue(results) is { } resultsPath)
            {
                if (baseline is null) throw new CliException("--results needs --compare BASELINE.json", ExitCodes.Usage);
                return Compare(output, wide, resultsPath, baseline, r.GetValue(compareJson), r.GetValue(strict));
            }

            var options = ParseOptions(r.GetValue(methods)!, r.GetValue(settings)!) with
            {
                Chunk = r.GetValue(chunk),
                Pairs = ScoreCommand.ParsePairs(r.GetValue(pairs)!),
                Threshold = r.GetValue(threshold),
                Seed = r.GetValue(seed),
                Warmup = r.GetValue(warmup),
                Phases = !r.GetValue(noPhases),
                ProLongSamples = r.GetValue(proLongSamples),
            };
            int n = r.GetValue(samples), t = r.GetValue(tokens);
            string? inputPath = r.GetValue(input);
            options = options with { Window = r.GetValue(window) ?? (inputPath is null ? t : 32768) };
            if (n < 1 || n > 100_000) throw new CliException($"--samples must be between 1 and 100000 (got {n})", ExitCodes.Usage);
            if (options.ProLongSamples is < 1) throw new CliException($"--prolong-samples must be at least 1 (got {options.ProLongSamples})", ExitCodes.Usage);
            if (r.GetValue(noRun) && r.GetValue(writeSamples) is null) throw new CliException("--no-run needs --write-samples FILE", ExitCodes.Usage);
            if (options.Warmup < 0 || options.Warmup > 100) throw new CliException($"--warmup must be between 0 and 100 (got {options.Warmup})", ExitCodes.Usage);
            if (options.Chunk < 2) throw new CliException($"--chunk must be at least 2 (got {options.Chunk})", ExitCodes.Usage);
            if (inputPath is null && (t < 2 * options.Chunk || t > 1 << 22))
                throw new CliException($"--tokens must be between 2 x --chunk ({2 * options.Chunk}) and {1 << 22} (got {t})", ExitCodes.Usage);
            if (options.Window < 2 * options.Chunk) throw new CliException($"--window must be at least twice --chunk ({2 * options.Chunk}); got {options.Window}", ExitCodes.Usage);
            if (r.GetValue(peak) is { } pk && !(pk > 0 && double.IsFinite(pk))) throw new CliException($"--peak-tflops must be a positive number (got {pk})", ExitCodes.Usage);

            var deviceSpec = BenchEngine.ParseDevice(r.GetValue(device)!);
            var log = Console.Error;
            var (cfg, tokenizer, modelSource, loadWeights) = OpenModel(r.GetValue(model), r.GetValue(shape)!, r.GetValue(modelSeed), t, log);
            if (r.GetValue(kernelTiming))
            {
                IReadOnlyList<LongDep.Cuda.AttentionKernels> sets = KernelsOption.ReadExplicit(r, kernels) is { } chosen
                    ? [chosen]
                    : [LongDep.Cuda.AttentionKernels.TensorCores, LongDep.Cuda.AttentionKernels.Simple];
                return KernelTimingReport.Run(output, log, deviceSpec, cfg, modelSource, t, options, sets, r.GetValue(json));
            }
            List<BenchSample> list;
            string sampleSource;
            if (inputPath is not null)
            {
                if (!File.Exists(inputPath)) throw new CliException($"--input '{inputPath}' does not exist");
                Func<string, int[]> encode = text => (tokenizer.Value ?? throw new CliException(
                    $"--input has text records but the model has no tokenizer; give records with input_ids")).Encode(text, false);
                try
                {
                    list = BenchSamples.FromCorpus(inputPath, n, encode, cfg.VocabSize);
                }
                catch (InvalidDataException e)
                {
                    throw new CliException(e.Message);
                }
                if (list.Count == 0) throw new CliException($"--input '{inputPath}' has no usable record");
                sampleSource = $"{list.Count} records of {inputPath}";
            }
            else
            {
                list = BenchSamples.Synthetic(n, t, cfg.VocabSize, options.Seed);
                sampleSource = $"{n} synthetic samples of {t} tokens (seed {options.Seed})";
            }
            if (r.GetValue(writeSamples) is { } samplesPath)
            {
                BenchSamples.Write(samplesPath, list, options.Window, options.Chunk, options.Pairs, options.Seed);
                log.WriteLine($"wrote {list.Count} samples with their ProLong draws to {samplesPath}");
                if (r.GetValue(noRun)) return ExitCodes.Ok;
            }

            var weights = loadWeights();
            using var engine = BenchEngine.Create(deviceSpec, weights, r.GetValue(threads), Math.Max(1, r.GetValue(pairBatch)),
                r.GetValue(bf16), KernelsOption.Read(r, kernels), r.GetValue(peak));
            log.WriteLine($"bench on {engine.Description}");
            if (engine.Kind == "cpu" && cfg.ParameterCount > 50_000_000 && list.Max(s => s.Tokens.Length) > 4096)
                log.WriteLine("warning: a model this large at this length takes very long on the CPU; use --shape tiny or fewer --tokens");
            BenchResult result;
            try
            {
                result = new BenchRunner(engine, cfg, options, log).Run(list, CliApp.CancelOnSignals());
            }
            finally
            {
                CliApp.StopHandlingSignals();
            }
            var context = new BenchContext
            {
                ModelSource = modelSource,
                Config = cfg,
                SampleSource = sampleSource,
                Samples = list,
                Options = options,
                DeviceKind = engine.Kind,
                DeviceDescription = engine.Description,
                PeakTflops = engine.PeakTflops,
                TotalMemory = engine.TotalMemory,
                BaselineUsed = engine.BaselineUsed,
                SamplesFile = r.GetValue(writeSamples),
            };
            BenchReport.Print(output, context, result, wide);
            string benchJson = BenchReport.ToJson(context, result);
            if (r.GetValue(json) is { } jsonPath)
            {
                WriteText(jsonPath, benchJson);
                log.WriteLine($"wrote {jsonPath}");
            }
            if (baseline is null) return ExitCodes.Ok;
            using var doc = JsonDocument.Parse(benchJson);
            return Compare(output, wide, doc.RootElement, baseline, r.GetValue(compareJson), r.GetValue(strict));
        });
        return cmd;
    }

    /// <summary>Parses --methods and --ladm-settings.</summary>
    public static BenchOptions ParseOptions(string methods, string ladmSettings)
    {
        var names = methods.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var m in names)
            if (m is not ("ladm" or "prolong"))
                throw new CliException($"--methods: '{m}' is not a method (expected ladm, prolong or ladm,prolong)", ExitCodes.Usage);
        if (names.Length == 0) throw new CliException("--methods names no method (expected ladm, prolong or ladm,prolong)", ExitCodes.Usage);
        var list = new List<(int, int)>();
        foreach (var part in ladmSettings.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var ab = part.Split(':');
            if (ab.Length != 2 || !int.TryParse(ab[0], NumberStyles.None, CultureInfo.InvariantCulture, out int a) ||
                !int.TryParse(ab[1], NumberStyles.None, CultureInfo.InvariantCulture, out int c) || a < 1 || c < 1 || a > 64 || c > 64)
                throw new CliException($"--ladm-settings: '{part}' is not d_afs:d_cds with both between 1 and 64 (e.g. 4:4,2:4)", ExitCodes.Usage);
            if (list.Contains((a, c))) throw new CliException($"--ladm-settings names {part} twice", ExitCodes.Usage);
            list.Add((a, c));
        }
        bool ladm = names.Contains("ladm");
        if (ladm && list.Count == 0) throw new CliException("--ladm-settings names no setting (e.g. 4:4,2:4,4:2,2:2)", ExitCodes.Usage);
        return new BenchOptions { RunLadm = ladm, RunProLong = names.Contains("prolong"), LadmSettings = list };
    }

    /// <summary>The model's config and tokenizer now, its weights when asked (a samples-only run needs none).</summary>
    private static (ModelConfig Config, Lazy<ITextTokenizer?> Tokenizer, string Source, Func<ModelWeights> Weights) OpenModel(string? path, string shape,
        long seed, int tokens, TextWriter log)
    {
        if (path is not null)
        {
            var description = ModelLoader.Describe(path);
            return (description.Config, new Lazy<ITextTokenizer?>(description.Tokenizer), Path.GetFullPath(path), () =>
            {
                log.WriteLine($"loading {path}");
                var loaded = ModelLoader.Load(path);
                return loaded.Weights;
            });
        }
        ModelConfig cfg;
        try
        {
            cfg = RandomModel.Shape(shape, contextLength: Math.Max(32768, tokens));
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message.Split(" (Parameter")[0], ExitCodes.Usage);
        }
        var tokenizer = new Lazy<ITextTokenizer?>(() => TokenizerFactory.FromGguf(MakeModelCommand.Vocabulary(cfg)));
        return (cfg, tokenizer, $"random {shape} (seed {seed})", () =>
        {
            log.WriteLine($"generating a random {shape} model ({cfg.ParameterCount:N0} parameters, seed {seed}); " +
                          $"'longdep make-model --shape {shape} --seed {seed}' writes the same weights");
            return RandomModel.Create(cfg, seed);
        });
    }

    private static int Compare(TextWriter output, bool wide, string resultsPath, string baselinePath, string? jsonPath, bool strict)
    {
        Comparison c;
        try
        {
            c = BenchComparison.CompareFiles(resultsPath, baselinePath);
        }
        catch (InvalidDataException e)
        {
            throw new CliException(e.Message);
        }
        return Report(output, wide, c, jsonPath, strict);
    }

    private static int Compare(TextWriter output, bool wide, JsonElement bench, string baselinePath, string? jsonPath, bool strict)
    {
        if (!File.Exists(baselinePath)) throw new CliException($"--compare '{baselinePath}' does not exist");
        Comparison c;
        try
        {
            using var baseline = JsonDocument.Parse(File.ReadAllBytes(baselinePath));
            c = BenchComparison.Compare(bench, baseline.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException or KeyNotFoundException)
        {
            throw new CliException($"--compare '{baselinePath}': {e.Message}");
        }
        return Report(output, wide, c, jsonPath, strict);
    }

    private static int Report(TextWriter output, bool wide, Comparison c, string? jsonPath, bool strict)
    {
        BenchComparison.Print(output, c, wide);
        if (jsonPath is not null) WriteText(jsonPath, BenchComparison.ToJson(c));
        if (strict && !c.AllApplicableMet) throw new CliException("a performance target was missed (see the table above)");
        return ExitCodes.Ok;
    }

    private static void WriteText(string path, string text)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, text + "\n");
    }
}
