using System.CommandLine;
using System.Globalization;
using LongDep.Cli.Runtime;
using LongDep.Models;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep inspect</c>: what a model file holds, without loading its weights.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "a GGUF file or a Hugging Face checkpoint folder" };
        var tensors = new Option<bool>("--tensors") { Description = "list every tensor with its type and shape" };
        var window = new Option<int>("--window") { Description = "W (= T for LADM) of the GPU memory figures", DefaultValueFactory = _ => 32768 };
        var pairs = new Option<int>("--pairs") { Description = "ProLong pairs of the GPU memory figure", DefaultValueFactory = _ => 5000 };
        var pairBatch = new Option<int>("--pair-batch") { Description = "ProLong pairs per GPU batch of the memory figure", DefaultValueFactory = _ => 128 };
        var cmd = new Command("inspect", "Model architecture, tensors, tokenizer and the GPU memory of one LADM and one ProLong measurement.")
        {
            path, tensors, window, pairs, pairBatch,
        };
        cmd.SetAction(r =>
        {
            var d = ModelLoader.Describe(r.GetValue(path)!);
            var c = d.Config;
            int t = r.GetValue(window);
            if (t < 1) throw new CliException("--window must be positive", ExitCodes.Usage);
            int pairCount = r.GetValue(pairs), batch = r.GetValue(pairBatch);
            if (pairCount < 1 || batch < 1) throw new CliException("--pairs and --pair-batch must be positive", ExitCodes.Usage);
            var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(d.Name ?? Path.GetFileName(d.Path))}[/]");
            table.AddColumn("property");
            table.AddColumn("value");
            void Row(string k, string v) => table.AddRow(k, Markup.Escape(v));
            Row("file", d.Path);
            Row("format", d.Format == ModelFormat.Gguf ? "GGUF" : "Hugging Face (safetensors)");
            Row("architecture", c.Architecture);
            Row("layers", c.Layers.ToString(CultureInfo.InvariantCulture));
            Row("embedding dim", c.Dim.ToString(CultureInfo.InvariantCulture));
            Row("feed-forward dim", c.FfDim.ToString(CultureInfo.InvariantCulture));
            Row("heads / KV heads", $"{c.Heads} / {c.KvHeads} (head dim {c.HeadDim})");
            Row("vocabulary", c.VocabSize.ToString("N0", CultureInfo.InvariantCulture));
            Row("RoPE", $"{(c.Rope == RopeStyle.AdjacentPairs ? "adjacent pairs" : "halves")}, base {c.RopeTheta.ToString(CultureInfo.InvariantCulture)}");
            Row("context length", c.ContextLength.ToString("N0", CultureInfo.InvariantCulture));
            Row("RMSNorm eps", c.NormEps.ToString(CultureInfo.InvariantCulture));
            Row("QKV bias / tied output", $"{(c.QkvBias ? "yes" : "no")} / {(c.TiedEmbedding ? "yes" : "no")}");
            Row("parameters", c.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
            var types = d.Tensors.GroupBy(x => x.TypeName).Select(g => $"{g.Key}×{g.Count()}");
            Row("tensors", $"{d.Tensors.Count} ({string.Join(", ", types)})");
            Row("weights at f16", Gib(MemoryEstimate.WeightBytesF16(c)));
            Row("device paths", Cuda.CudaModel.DevicePaths(c));
            foreach (var (label, value) in GpuMemoryRows(c, t, pairCount, batch)) Row(label, value);
            Row("tokenizer", d.Tokenizer is { } tok ? $"{tok.Kind}, {tok.VocabSize:N0} tokens, BOS {tok.BosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}, EOS {tok.EosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}" : $"none ({d.TokenizerProblem})");
            AnsiConsole.Write(table);
            if (r.GetValue(tensors))
            {
                var list = new Table().Border(TableBorder.Simple);
                list.AddColumn("tensor");
                list.AddColumn("type");
                list.AddColumn("shape");
                foreach (var x in d.Tensors) list.AddRow(Markup.Escape(x.Name), Markup.Escape(x.TypeName), Markup.Escape($"[{string.Join(", ", x.Shape)}]"));
                AnsiConsole.Write(list);
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string Gib(long bytes) => $"{bytes / (double)(1L << 30):F2} GiB";

    /// <summary>
    /// The engine's own device buffers for one LADM measurement at T = W and one ProLong measurement (N = W / 128 chunks),
    /// counted by replaying the runs without a GPU (<see cref="Cuda.DeviceMemoryPlan"/>); for models whose placeholder
    /// weights would take more than 4 GiB of host memory, the formula estimate instead.
    /// </summary>
    private static IEnumerable<(string, string)> GpuMemoryRows(ModelConfig c, int t, int pairs, int pairBatch)
    {
        const string extra = "+ CUDA context and cuBLAS workspace";
        if (Cuda.CudaModel.Unsupported(c) is not null) yield break; // the GPU cannot run it (see "device paths")
        if (Cuda.DeviceMemoryPlan.PlaceholderHostBytes(c) > 4L << 30 || t < 2 * 128 + 1)
        {
            yield return ($"GPU memory, one LADM pass at T={t:N0}", $"{Gib(MemoryEstimate.LadmGpuBytes(c, t))} (weights f16 + activations, estimate)");
            yield break;
        }
        string ladm, proLong;
        int minimum = Core.Probes.LadmSchedule.MinimumTokens(128, 4);
        try
        {
            ladm = t < minimum
                ? $"none: T is below the {minimum:N0} tokens LADM's default schedule needs"
                : $"{Gib(Cuda.DeviceMemoryPlan.Ladm(c, t))} engine buffers {extra}";
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            ladm = $"not counted: {e.Message}";
        }
        int chunks = Math.Max(2, t / 128);
        int usable = Math.Min(pairs, chunks * (chunks - 1) / 2);
        try
        {
            proLong = $"{Gib(Cuda.DeviceMemoryPlan.ProLong(c, chunks, 128, usable, proLongOptions: new Cuda.CudaProLongOptions { PairBatch = pairBatch }))} engine buffers {extra}";
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            proLong = $"not counted: {e.Message}";
        }
        yield return ($"GPU memory, LADM at T={t:N0} (counted)", ladm);
        yield return ($"GPU memory, ProLong {chunks} chunks, {usable:N0} pairs, batch {pairBatch} (counted)", proLong);
    }
}
