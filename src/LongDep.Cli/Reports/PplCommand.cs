using System.CommandLine;
using LongDep.Cli.Runtime;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Detail;
using LongDep.Core.Records;
using LongDep.Models;
using LongDep.Models.Cpu;
using LongDep.Models.Tokenization;

namespace LongDep.Cli.Reports;

/// <summary><see cref="ISequenceNll"/> on the exact CPU forward.</summary>
public sealed class CpuSequenceNll(CpuForward forward) : ISequenceNll
{
    public double[] TokenNll(ReadOnlySpan<int> tokens)
    {
        // Row t predicts token t + 1; the result is shifted so that nll[t] is the NLL of token t.
        int n = tokens.Length;
        var targets = new int[n];
        for (int t = 0; t < n; t++) targets[t] = t + 1 < n ? tokens[t + 1] : -1;
        double[] rows = forward.TokenNll(tokens, targets, prefix: null, out _, keepCache: false);
        var nll = new double[n];
        nll[0] = double.NaN;
        for (int t = 1; t < n; t++) nll[t] = rows[t - 1];
        return nll;
    }
}

/// <summary>Makes the backend of a device other than "cpu" (e.g. "cuda:0"); returns null when the device is not available.</summary>
public delegate ISequenceNll? SequenceNllFactory(string device, LoadedModel model);

/// <summary>
/// <c>longdep ppl</c>: mean perplexity by context window, as LADM's Table 2 (see <see cref="WindowedPerplexity"/> for the
/// exact protocol). Prints one row for the model and one column per window, with the sample and skip counts.
/// </summary>
public static class PplCommand
{
    /// <summary>The protocol, as printed under the table and in the help.</summary>
    public const string Protocol =
        "per sample: ppl = exp(mean NLL of tokens 2..w of its first w tokens); per window: the mean of the per-sample ppl " +
        "over the samples with at least w tokens (shorter samples are skipped for that window and counted). " +
        "LADM Table 2: 100 Proof-Pile test samples longer than 32K, each truncated to the window.";

    /// <summary>The command with the CPU backend only.</summary>
    public static Command Create() => Create(null);

    /// <summary>The command; <paramref name="devices"/> supplies backends for devices other than "cpu".</summary>
    public static Command Create(SequenceNllFactory? devices)
    {
        var model = new Option<string>("--model") { Description = "GGUF file or Hugging Face checkpoint folder.", Required = true };
        var input = new Option<string>("--input") { Description = "Samples (.jsonl, .jsonl.zst, .jsonl.gz, .parquet) with text or input_ids.", Required = true };
        var windows = new Option<string>("--windows")
        {
            Description = "Comma-separated context windows in tokens (suffix K = 1024).",
            DefaultValueFactory = _ => "2048,4096,8192,16384,32768",
        };
        var device = new Option<string>("--device") { Description = "cpu, or a GPU device when this build provides one.", DefaultValueFactory = _ => "cpu" };
        var maxSamples = NumericOption.WholeOrNone("--max-samples", "Use only the first N good records of the input.", 1, int.MaxValue);
        var addBos = new Option<bool>("--add-bos") { Description = "Prepend the BOS token to each sample (text and input_ids)." };
        var threads = NumericOption.Whole("--threads", "CPU threads (0: all).", 0, 0, 4096);
        var ropeTheta = NumericOption.RealOrNone("--rope-theta", "Override the RoPE frequency base.", 0, 1e12, minExclusive: true);
        var json = new Option<string?>("--json") { Description = "Also write the results as JSON to this file." };
        var command = new Command("ppl", "Mean perplexity by context window (LADM Table 2): " + Protocol)
        {
            model, input, windows, device, maxSamples, addBos, threads, ropeTheta, json,
        };
        command.SetAction(r =>
        {
            int[] ws;
            try
            {
                ws = ParseWindows(r.GetValue(windows)!);
            }
            catch (ArgumentException e)
            {
                throw new Runtime.CliException(e.Message, Runtime.ExitCodes.Usage);
            }
            int? max = r.GetValue(maxSamples);
            if (max is < 1) throw new ArgumentException($"--max-samples must be at least 1 (got {max})");
            int threadCount = r.GetValue(threads);
            if (threadCount < 0) throw new ArgumentException($"--threads must be 0 (all) or more (got {threadCount})");
            string modelPath = r.GetValue(model)!, inputPath = r.GetValue(input)!;
            CorpusReader.DetectFormat(inputPath);
            if (!File.Exists(inputPath)) throw new FileNotFoundException($"input file '{inputPath}' does not exist.", inputPath);

            LoadedModel loaded = ModelLoader.Load(modelPath, r.GetValue(ropeTheta) is { } theta ? (float)theta : null);
            string dev = r.GetValue(device)!.Trim().ToLowerInvariant();
            ISequenceNll backend = dev == "cpu"
                ? new CpuSequenceNll(new CpuForward(loaded.Weights, threadCount, CpuMath.Fast))
                : devices?.Invoke(dev, loaded) ?? throw new ArgumentException($"--device {dev} is not available for ppl in this build; use --device cpu");

            TextWriter err = r.InvocationConfiguration.Error;
            PplRun run = Evaluate(loaded, backend, inputPath, ws, max, r.GetValue(addBos),
                (n, tokens, seconds) => err.WriteLine($"[ppl] sample {n}: {tokens} tokens, {seconds:F1} s"));
            string name = ModelName(modelPath);
            r.InvocationConfiguration.Output.Write(FormatTable(name, run));
            if (r.GetValue(json) is { } jsonPath) File.WriteAllText(jsonPath, ToJson(name, dev, run));
            return 0;
        });
        return command;
    }

    /// <summary>The outcome of a run: per-window results and record counts.</summary>
    public sealed record PplRun(IReadOnlyList<WindowPerplexity> Windows, int Samples, int BadRecords, bool AddBos);

    /// <summary>Streams the input, tokenizes each good record and adds it to a <see cref="WindowedPerplexity"/>.</summary>
    public static PplRun Evaluate(LoadedModel model, ISequenceNll backend, string inputPath, IReadOnlyList<int> windows, int? maxSamples,
        bool addBos, Action<int, int, double>? progress = null)
    {
        var ppl = new WindowedPerplexity(windows);
        int vocab = model.Config.VocabSize, bad = 0, samples = 0;
        ITextTokenizer? tokenizer = null;
        foreach (InputRecord rec in CorpusReader.OpenParsed(inputPath))
        {
            if (maxSamples is { } m && samples >= m) break;
            if (rec.IsBad)
            {
                bad++;
                continue;
            }
            int[] tokens;
            if (rec.InputIds is { } ids)
            {
                if (InputRecord.CheckVocabulary(ids, vocab) is not null)
                {
                    bad++;
                    continue;
                }
                tokens = addBos ? [Bos(model), .. ids] : ids;
            }
            else
            {
                tokenizer ??= model.RequireTokenizer();
                tokens = tokenizer.Encode(rec.Text ?? "", addBos);
            }
            var clock = Stopwatch.StartNew();
            ppl.Add(tokens, backend);
            samples++;
            progress?.Invoke(samples, ppl.TokensNeeded(tokens.Length), clock.Elapsed.TotalSeconds);
        }
        return new PplRun(ppl.Results(), samples, bad, addBos);
    }

    /// <summary>"2048,4K,8192" → [2048, 4096, 8192].</summary>
    public static int[] ParseWindows(string text)
    {
        var list = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string p = part.ToUpperInvariant();
            int scale = p.EndsWith('K') ? 1024 : 1;
            if (scale > 1) p = p[..^1];
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1 || (long)v * scale < 2 || (long)v * scale > Core.Pipeline.ScoreSettings.MaxWindow)
                throw new ArgumentException($"--windows: '{part}' is not a window size; expected comma-separated token counts such as 2048,4096 or 2K,4K (valid: 2..{Core.Pipeline.ScoreSettings.MaxWindow} each)");
            int w = v * scale;
            if (list.Contains(w)) throw new ArgumentException($"--windows: {w} is given twice");
            list.Add(w);
        }
        if (list.Count == 0) throw new ArgumentException("--windows: no window given; expected e.g. 2048,4096,8192");
        list.Sort();
        return [.. list];
    }

    /// <summary>The table: a header of windows, the model's row, then sample and skip counts, then the protocol.</summary>
    public static string FormatTable(string modelName, PplRun run)
    {
        var cols = run.Windows;
        int first = Math.Max(Math.Max(modelName.Length, "skipped (short)".Length), 5) + 2;
        const int Width = 10;
        var sb = new StringBuilder();
        sb.Append("Model".PadRight(first));
        foreach (var w in cols) sb.Append(WindowLabel(w.Window).PadLeft(Width));
        sb.AppendLine();
        sb.Append(modelName.PadRight(first));
        foreach (var w in cols) sb.Append((double.IsNaN(w.MeanPerplexity) ? "-" : w.MeanPerplexity.ToString("F3", CultureInfo.InvariantCulture)).PadLeft(Width));
        sb.AppendLine();
        sb.Append("samples".PadRight(first));
        foreach (var w in cols) sb.Append(w.Samples.ToString(CultureInfo.InvariantCulture).PadLeft(Width));
        sb.AppendLine();
        sb.Append("skipped (short)".PadRight(first));
        foreach (var w in cols) sb.Append(w.Skipped.ToString(CultureInfo.InvariantCulture).PadLeft(Width));
        sb.AppendLine();
        sb.AppendLine();
        sb.Append(CultureInfo.InvariantCulture, $"{run.Samples} samples read{(run.BadRecords > 0 ? $", {run.BadRecords} bad records skipped" : "")}{(run.AddBos ? ", BOS prepended" : "")}.").AppendLine();
        sb.Append("Protocol: ").Append(Protocol).AppendLine();
        return sb.ToString();
    }

    /// <summary>2048 → "2K", 3000 → "3000".</summary>
    public static string WindowLabel(int w) => w % 1024 == 0 ? $"{w / 1024}K" : w.ToString(CultureInfo.InvariantCulture);

    private static string ToJson(string name, string device, PplRun run)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("model", name);
            w.WriteString("device", device);
            w.WriteString("protocol", Protocol);
            w.WriteNumber("samples", run.Samples);
            w.WriteNumber("bad_records", run.BadRecords);
            w.WriteBoolean("add_bos", run.AddBos);
            w.WriteStartArray("windows");
            foreach (var r in run.Windows)
            {
                w.WriteStartObject();
                w.WriteNumber("window", r.Window);
                w.WriteNumber("samples", r.Samples);
                w.WriteNumber("skipped", r.Skipped);
                if (double.IsNaN(r.MeanPerplexity)) w.WriteNull("ppl");
                else w.WriteNumber("ppl", r.MeanPerplexity);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static int Bos(LoadedModel model) =>
        model.Tokenizer?.BosId ?? throw new ArgumentException("--add-bos: the model's tokenizer has no BOS token (or the model has no tokenizer)");

    private static string ModelName(string path) => Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
}
