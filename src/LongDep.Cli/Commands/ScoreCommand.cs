using System.CommandLine;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus;
using LongDep.Core.Diagnostics;
using LongDep.Core.Pipeline;
using LongDep.Core.Records;
using LongDep.Core.Scoring;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep score</c>: scores every record of a corpus with LADM's CDS or ProLong's LDS (SPEC §1–3, §5).</summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = "ladm (CDS) or prolong (LDS)", Required = true };
        method.AcceptOnlyFromAmong("ladm", "prolong");
        var model = new Option<string>("--model") { Description = "a GGUF file or a Hugging Face checkpoint folder", Required = true };
        var input = new Option<string>("--input") { Description = "corpus: .jsonl, .jsonl.zst, .jsonl.gz, .parquet or an MDS dataset folder", Required = true };
        var output = new Option<string>("--output")
        {
            Description = "scores, one JSON line per input record after a settings line (resumed when it exists; '-', a pipe or a FIFO: streamed, no resume)",
            Required = true,
        };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, cuda:N, cuda:0,1 or cuda:all", DefaultValueFactory = _ => "auto" };
        var window = NumericOption.Whole("--window", "W: tokens per sample (LADM) / N = W/l chunks at most (ProLong); at least 2 × --chunk", 32768, 4, ScoreSettings.MaxWindow);
        var chunk = NumericOption.Whole("--chunk", "l: span / chunk length in tokens; at most --window / 2", 128, 2, ScoreSettings.MaxWindow / 2);
        var dAfs = NumericOption.Whole("--d-afs", "LADM: interval = l * d_afs; a full window must hold a span: 4 · l · d_afs < W − 2l", 4, 1, ScoreSettings.MaxDistance);
        var dCds = NumericOption.Whole("--d-cds", "LADM: stride between query spans = l * d_cds; at most W / l", 4, 1, ScoreSettings.MaxDistance);
        var ablation = new Option<string>("--ablation") { Description = "LADM: none, no-std or no-len-weight", DefaultValueFactory = _ => "none" };
        ablation.AcceptOnlyFromAmong("none", "no-std", "no-len-weight");
        var pairs = new Option<string>("--pairs") { Description = $"ProLong: pairs drawn per record, a number or 'all' (default 5000; valid: 1..{int.MaxValue} or all)", DefaultValueFactory = _ => "5000" };
        pairs.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && !TryParsePairs(r.Tokens[^1].Value, out _))
                r.AddError($"--pairs '{r.Tokens[^1].Value}' is not a whole number in range (valid: 1..{int.MaxValue}) or 'all'");
        });
        var threshold = NumericOption.Real("--threshold", "ProLong: δ, DST threshold", 0.1, -1e6, 1e6);
        var seed = NumericOption.Whole("--seed", "seed of the draws (per record: seed and record index)", 11L, long.MinValue, long.MaxValue);
        var addBos = new Option<bool?>("--add-bos") { Description = "prepend the model's BOS token to text records: true or false (default: as the model's tokenizer config says; no BOS for OPT, as ProLong)" };
        var domainField = new Option<string>("--domain-field") { Description = "dotted path of the domain (MDS input: the domain column)", DefaultValueFactory = _ => "meta.pile_set_name" };
        var textField = new Option<string>("--text-field") { Description = "dotted path of the text", DefaultValueFactory = _ => "text" };
        var idsField = new Option<string>("--ids-field") { Description = "dotted path of pre-tokenized ids", DefaultValueFactory = _ => "input_ids" };
        var idField = new Option<string>("--id-field") { Description = "dotted path of the record id", DefaultValueFactory = _ => "id" };
        var ropeTheta = NumericOption.RealOrNone("--rope-theta", "override the RoPE frequency base (LADM's calculator: 500000 at 32K)", 0, 1e12, minExclusive: true, absent: "default: the model's");
        var shard = new Option<string?>("--shard") { Description = "i/N: score only records with index ≡ i (mod N); 0 ≤ i < N, and i = N also means shard 0 (1-based Slurm arrays)" };
        var shards = NumericOption.WholeOrNone("--shards", "N shards, this one's index read from SLURM_ARRAY_TASK_ID (0..N-1, or 1..N: task N is shard 0)", 1, 1 << 20, absent: "default: not sharded");
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing output (and --detail file) instead of resuming it" };
        var detail = new Option<string?>("--detail") { Description = "also write each record's measurements to this side file (kept in step with --output)" };
        var threads = NumericOption.Whole("--threads", "CPU threads, 0 = all cores", 0, 0, 4096);
        var pairBatch = NumericOption.Whole("--pair-batch", "GPU: ProLong pairs per batch", 128, 1, 1 << 16);
        var bf16 = new Option<bool>("--bf16") { Description = "GPU: keep weights in bf16 instead of f16" };
        var kernels = KernelsOption.Create();
        var profile = new Option<bool>("--profile") { Description = "print a per-phase time table at the end" };
        var progressEvery = NumericOption.Real("--progress-interval", "seconds between progress lines when stderr is not a terminal", 30, 0.1, 86400);
        var flushEvery = NumericOption.Whole("--flush-every", "records between flushes of the output", 8, 1, 1_000_000);

        var cmd = new Command("score", "Score every record of a corpus (LADM CDS or ProLong LDS); one output line per input record, in input order.")
        {
            method, model, input, output, device, window, chunk, dAfs, dCds, ablation, pairs, threshold, seed, addBos,
            domainField, textField, idsField, idField, ropeTheta, shard, shards, overwrite, detail, threads, pairBatch, bf16, kernels, profile,
            progressEvery, flushEvery,
        };
        cmd.SetAction(r =>
        {
            var settings = new ScoreSettings
            {
                Method = r.GetValue(method) == "ladm" ? ScoreMethod.Ladm : ScoreMethod.ProLong,
                Window = r.GetValue(window),
                Chunk = r.GetValue(chunk),
                DAfs = r.GetValue(dAfs),
                DCds = r.GetValue(dCds),
                Ablation = r.GetValue(ablation) switch { "no-std" => LadmAblation.NoStd, "no-len-weight" => LadmAblation.NoLenWeight, _ => LadmAblation.None },
                Pairs = ParsePairs(r.GetValue(pairs)!),
                Threshold = r.GetValue(threshold),
                Seed = r.GetValue(seed),
            };
            if (settings.Validate() is { } bad) throw new CliException(bad, ExitCodes.Usage);
            var (shardIndex, shardCount) = ResolveShard(r.GetValue(shard), r.GetValue(shards), Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID"));
            var fields = new RecordFieldOptions
            {
                TextField = r.GetValue(textField)!,
                IdsField = r.GetValue(idsField)!,
                IdField = r.GetValue(idField)!,
                DomainField = r.GetResult(domainField) is { Implicit: false }
                    ? r.GetValue(domainField)!
                    : CorpusReader.DefaultDomainField(r.GetValue(input)!, r.GetValue(domainField)!),
            };
            string inputPath = r.GetValue(input)!, outputPath = r.GetValue(output)!, modelPath = r.GetValue(model)!;
            string? detailPath = r.GetValue(detail);
            bool overwriting = r.GetValue(overwrite);
            var deviceSpec = DeviceSpec.Parse(r.GetValue(device)!);
            if (!CorpusReader.InputExists(inputPath)) throw new CliException($"input '{inputPath}' does not exist");

            // Nothing is opened for writing before the outputs are known to be none of the inputs.
            OutputGuard.RefuseSameFiles([new("--input", inputPath), new("--model", File.Exists(modelPath) ? modelPath : null)],
                [new("--output", outputPath), new("--detail", detailPath)]);
            bool streamed = OutputGuard.IsStream(outputPath);
            if (streamed && detailPath is not null)
                throw new CliException($"--detail needs --output to be a file: a run written to '{outputPath}' cannot be resumed, so the two could not be kept in step", ExitCodes.Usage);
            bool recordsOnStdout = OutputGuard.SharesStandardOutput(outputPath);
            Phases.Timing = r.GetValue(profile);
            var stderr = Console.Error;

            // The settings line: everything that changes a score. The model's identity is read now (fast); the tokenizer
            // and the numerics of the device are known once the model is loaded and the device opened.
            string modelId = ModelFingerprint.Compute(modelPath);
            float? theta = r.GetValue(ropeTheta) is { } t ? (float)t : null;
            var early = Header(settings, modelId, fields, r.GetValue(addBos) ?? false, theta, tokenizer: "?", compute: "?");
            if (!streamed)
            {
                using (OutputFiles.OpenLocked(outputPath, "--output")) { } // another run holding it: stop now, before the model loads
                if (!overwriting && File.Exists(outputPath) && ScoreReader.ReadHeader(outputPath) is { } found &&
                    found.Differences(early, ignore: r.GetValue(addBos) is null
                        ? new HashSet<string> { "tokenizer", "compute", "add_bos" } // the model's default is known once it loads
                        : new HashSet<string> { "tokenizer", "compute" }) is { Count: > 0 } diffs)
                    throw new CliException($"{outputPath} was scored with other settings ({string.Join("; ", diffs)}); to resume it, run with its settings; to start over use --overwrite, or give another --output");
            }

            stderr.WriteLine($"loading {modelPath}");
            LoadedModel loaded;
            using (Phases.Begin("load model")) loaded = ModelLoader.Load(modelPath, theta);
            foreach (string warning in ModelChecks.BeforeScoring(loaded.Config, settings)) stderr.WriteLine($"note: {warning}");
            bool addBosValue = r.GetValue(addBos) ?? loaded.AddBosDefault;
            var tokenizer = MakeTokenizer(loaded, addBosValue);
            var backendOptions = new BackendOptions(r.GetValue(threads), r.GetValue(pairBatch), r.GetValue(bf16), KernelsOption.Read(r, kernels));
            var (workers, description) = Backends.Create(deviceSpec, loaded, settings, backendOptions);
            string compute = workers.Count > 0 && workers[0].Device == "cpu"
                ? Backends.CpuCompute
                : $"cuda {(backendOptions.Bf16 ? "bf16" : "f16")} weights, {(backendOptions.Kernels == LongDep.Cuda.AttentionKernels.TensorCores ? "tensor" : "simple")} kernels";
            string tokenizerId = loaded.Tokenizer is { } tok ? $"{tok.Kind}, {tok.VocabSize} ids, bos {tok.BosId?.ToString() ?? "none"}" : "none";
            var header = Header(settings, modelId, fields, addBosValue, theta, tokenizerId, compute).ForShard(shardIndex, shardCount);
            stderr.WriteLine($"scoring with {settings.MethodName} on {description}");
            CancellationToken ct = CliApp.CancelOnSignals();
            Stream? stream = null;
            RunSummary summary;
            try
            {
                stream = !streamed ? null
                    : outputPath == "-" ? Console.OpenStandardOutput()
                    : new FileStream(outputPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 16);
                var options = new ScoreRunOptions
                {
                    InputPath = inputPath,
                    OutputPath = outputPath,
                    OutputStream = stream,
                    Header = header,
                    Fields = fields,
                    ShardIndex = shardIndex,
                    ShardCount = shardCount,
                    Overwrite = overwriting,
                    FlushEvery = r.GetValue(flushEvery),
                    Log = line => stderr.WriteLine($"longdep: {line}"),
                };
                using IDetailSink? sink = DetailSinks.Open(detailPath, options, settings, header);
                summary = ProgressDisplay.Run(progress => ScoreRun.Execute(options, settings, tokenizer, workers, sink, progress, ct),
                    TimeSpan.FromSeconds(r.GetValue(progressEvery)));
            }
            finally
            {
                CliApp.StopHandlingSignals();
                foreach (var w in workers) w.Dispose();
                stream?.Dispose();
            }
            PrintSummary(summary, description, outputPath, recordsOnStdout);
            if (Phases.Timing) PrintPhases(recordsOnStdout);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>The settings line of a run (see <see cref="ScoreHeader"/>): only what changes a score, in a fixed order.</summary>
    public static ScoreHeader Header(ScoreSettings s, string modelId, RecordFieldOptions fields, bool addBos, float? ropeTheta, string tokenizer, string compute)
    {
        var list = new List<KeyValuePair<string, string>>
        {
            new("method", s.MethodName),
            new("model", modelId),
            new("tokenizer", tokenizer),
            new("compute", compute),
            new("window", Inv(s.Window)),
            new("chunk", Inv(s.Chunk)),
        };
        if (s.Method == ScoreMethod.Ladm)
        {
            list.Add(new("d_afs", Inv(s.DAfs)));
            list.Add(new("d_cds", Inv(s.DCds)));
            list.Add(new("ablation", s.Ablation switch { LadmAblation.NoStd => "no-std", LadmAblation.NoLenWeight => "no-len-weight", _ => "none" }));
        }
        else
        {
            list.Add(new("pairs", s.Pairs == -1 ? "all" : Inv(s.Pairs)));
            list.Add(new("threshold", s.Threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
            list.Add(new("seed", Inv(s.Seed)));
        }
        list.Add(new("add_bos", addBos ? "yes" : "no"));
        list.Add(new("rope_theta", ropeTheta is { } t ? t.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "model"));
        list.Add(new("text_field", fields.TextField));
        list.Add(new("ids_field", fields.IdsField));
        list.Add(new("id_field", fields.IdField));
        list.Add(new("domain_field", fields.DomainField));
        return new ScoreHeader(list);
    }

    private static string Inv(long v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The text→ids function of a loaded model; records with text fail as bad_record when it has no tokenizer.</summary>
    public static ScoreRun.Tokenizer MakeTokenizer(LoadedModel model, bool addBos)
    {
        var tok = model.Tokenizer;
        if (addBos && tok is not null && tok.BosId is null)
            throw new CliException($"--add-bos: the model's tokenizer has no BOS token");
        Func<string, int[]> encode = tok is null
            ? _ => throw new InvalidOperationException($"the model has no usable tokenizer ({model.TokenizerProblem}); give input_ids")
            : text => tok.Encode(text, addBos);
        return new ScoreRun.Tokenizer(encode, model.Config.VocabSize);
    }

    public static int ParsePairs(string text) =>
        TryParsePairs(text, out int n) ? n : throw new CliException($"--pairs '{text}' is not a whole number in range (valid: 1..{int.MaxValue}) or 'all'", ExitCodes.Usage);

    private static bool TryParsePairs(string text, out int pairs)
    {
        pairs = -1;
        if (text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return true;
        return int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out pairs) && pairs > 0;
    }

    /// <summary>
    /// The shard of this run from <c>--shard i/N</c>, or from <c>--shards N</c> and the Slurm array task id. Slurm arrays
    /// are numbered as their job script says (0..N−1 or 1..N), and a rerun of one task (<c>sbatch --array=2</c>) sets a
    /// task count of 1, so the count always comes from the user and task N is taken as shard 0.
    /// </summary>
    public static (int Index, int Count) ResolveShard(string? shard, int? shards, string? slurmTaskId)
    {
        if (shard is not null && shards is not null)
            throw new CliException("give either --shard i/N or --shards N (with SLURM_ARRAY_TASK_ID), not both", ExitCodes.Usage);
        if (shards is { } n)
        {
            if (string.IsNullOrWhiteSpace(slurmTaskId))
                throw new CliException($"--shards {n} takes this shard's index from SLURM_ARRAY_TASK_ID, which is not set (outside a Slurm array use --shard i/{n})", ExitCodes.Usage);
            if (!int.TryParse(slurmTaskId.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id > n)
                throw new CliException($"--shards {n}: SLURM_ARRAY_TASK_ID '{slurmTaskId}' is not a shard index (valid: 0..{n}; submit the array as --array=0-{n - 1} or --array=1-{n})", ExitCodes.Usage);
            return (id % n, n);
        }
        return ParseShard(shard);
    }

    public static (int Index, int Count) ParseShard(string? text)
    {
        if (string.IsNullOrEmpty(text)) return (0, 1);
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) &&
            int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1 && i <= n && n <= 1 << 20)
            return (i % n, n);
        throw new CliException($"--shard '{text}' must be i/N with 0 <= i <= N (i = N is shard 0, for 1-based arrays) and 1 <= N <= {1 << 20}, e.g. 0/8; in a Slurm array use --shards 8 (the index comes from SLURM_ARRAY_TASK_ID)", ExitCodes.Usage);
    }

    /// <summary>The console for tables: standard error when the records go to standard output.</summary>
    private static IAnsiConsole TableConsole(bool recordsOnStdout) =>
        recordsOnStdout ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : AnsiConsole.Console;

    private static void PrintSummary(RunSummary s, string device, string output, bool recordsOnStdout)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]longdep score[/]");
        table.AddColumn("what");
        table.AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("records written", s.Records.ToString("N0"));
        foreach (ScoreStatus st in Enum.GetValues<ScoreStatus>()) table.AddRow($"  {st.ToJsonName()}", s.Count(st).ToString("N0"));
        table.AddRow("tokens (ok records)", s.Tokens.ToString("N0"));
        table.AddRow("seconds", s.Seconds.ToString("F1"));
        table.AddRow("records/s", s.RecordsPerSecond.ToString("F3"));
        table.AddRow("tokens/s", s.TokensPerSecond.ToString("F0"));
        table.AddRow("device", Markup.Escape(device));
        table.AddRow("peak host memory", $"{System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0):F0} MiB");
        table.AddRow("output", Markup.Escape(output));
        TableConsole(recordsOnStdout).Write(table);
    }

    public static void PrintPhases(bool recordsOnStdout = false)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]phases (--profile)[/]");
        table.AddColumn("phase");
        table.AddColumn(new TableColumn("total s").RightAligned());
        table.AddColumn(new TableColumn("count").RightAligned());
        table.AddColumn(new TableColumn("mean ms").RightAligned());
        foreach (var (name, total, count) in Phases.Snapshot())
            table.AddRow(Markup.Escape(name), total.TotalSeconds.ToString("F3"), count.ToString("N0"),
                (count > 0 ? total.TotalMilliseconds / count : 0).ToString("F3"));
        TableConsole(recordsOnStdout).Write(table);
    }
}
