using System.CommandLine;
using LongDep.Core.Pipeline;
using System.Globalization;
using LongDep.Cli.Runtime;
using LongDep.Models;
using LongDep.Models.HuggingFace;
using Spectre.Console;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep inspect</c>: what a model file holds, without loading its weights.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "a GGUF file or a Hugging Face checkpoint folder" };
        var tensors = new Option<bool>("--tensors") { Description = "list every tensor with its type and shape" };
        var window = NumericOption.Whole("--window", "W (= T for LADM) of the GPU memory figures", 32768, 4, ScoreSettings.MaxWindow);
        var pairs = NumericOption.Whole("--pairs", "ProLong pairs of the GPU memory figure", 5000, 1, int.MaxValue);
        var pairBatch = NumericOption.Whole("--pair-batch", "ProLong pairs per GPU batch of the memory figure", 128, 1, 1 << 16);
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
            Row("format", d.Format == ModelFormat.Gguf ? "GGUF"
                : HuggingFaceModel.WeightsFormatOf(d.Path) == HfWeightsFormat.PyTorch ? "Hugging Face (PyTorch .bin)" : "Hugging Face (safetensors)");
            Row("architecture", c.Architecture);
            Row("layers", c.Layers.ToString(CultureInfo.InvariantCulture));
            Row("embedding dim", c.Dim.ToString(CultureInfo.InvariantCulture));
            Row("feed-forward dim", c.FfDim.ToString(CultureInfo.InvariantCulture));
            Row("heads / KV heads", $"{c.Heads} / {c.KvHeads} (head dim {c.HeadDim})");
            Row("vocabulary", c.VocabSize.ToString("N0", CultureInfo.InvariantCulture));
            foreach (var (k, v) in Describe(c)) Row(k, v);
            Row("parameters", c.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
            var types = d.Tensors.GroupBy(x => x.TypeName).Select(g => $"{g.Key}×{g.Count()}");
            Row("tensors", $"{d.Tensors.Count} ({string.Join(", ", types)})");
            Row("weights at f16", Gib(MemoryEstimate.WeightBytesF16(c)));
            Row("device paths", Cuda.CudaModel.DevicePaths(c));
            foreach (var (label, value) in GpuMemoryRows(c, t, pairCount, batch)) Row(label, value);
            Row("tokenizer", d.Tokenizer is { } tok ? $"{tok.Kind}, {tok.VocabSize:N0} tokens, BOS {tok.BosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}, EOS {tok.EosId?.ToString(CultureInfo.InvariantCulture) ?? "none"}" : $"none ({d.TokenizerProblem})");
            Row("--add-bos default", d.AddBosDefault && d.Tokenizer?.BosId is not null ? "true (the tokenizer config adds BOS)" : "false");
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

    /// <summary>The block description of <paramref name="c"/> as (property, value) rows.</summary>
    public static IEnumerable<(string, string)> Describe(ModelConfig c)
    {
        string I(double v) => v.ToString(CultureInfo.InvariantCulture);
        string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        string norm = c.Norm == NormKind.LayerNorm ? "LayerNorm with bias" : "RMSNorm";
        string placement = c.NormPlacement switch
        {
            NormPlacement.Pre => "before each block",
            NormPlacement.Post => "after each residual add",
            _ => "before and after each block (sandwich)",
        };
        yield return ("norm", $"{norm} {placement}, eps {c.NormEps.ToString("G6", CultureInfo.InvariantCulture)}{(c.FinalNorm ? ", final norm" : ", no final norm")}");
        yield return ("positions", c.Positions == PositionKind.Learned
            ? $"learned, {N(c.PositionRows - c.PositionOffset)} positions (table offset {c.PositionOffset})"
            : $"RoPE ({(c.Rope == RopeStyle.AdjacentPairs ? "adjacent pairs" : "halves")}), base {I(c.RopeTheta)}, scaling {c.RopeScaling}"
              + (c.LocalRopeTheta is float lt ? $"; sliding layers base {I(lt)} without scaling" : ""));
        yield return ("context length", N(c.ContextLength));
        var attention = new List<string> { $"scale {I(c.ScoreScale)}{(c.ScaleQueries ? " on q" : "")}" };
        if (c.QkvBias) attention.Add(c.OutputProjectionBias ? "q/k/v/o biases" : "q/k/v biases");
        if (c.QkNorm) attention.Add("q/k RMSNorm");
        if (c.AttentionSoftCap is float ac) attention.Add($"soft-cap {I(ac)}");
        if (c.HasSlidingWindow)
        {
            int sliding = Enumerable.Range(0, c.Layers).Count(l => c.WindowOf(l) is not null);
            attention.Add($"sliding window {N(c.SlidingWindow!.Value)} on {sliding} of {c.Layers} layers");
        }
        yield return ("attention", string.Join(", ", attention));
        yield return ("feed-forward", c.FeedForward switch
        {
            FeedForwardKind.SwiGlu => "SwiGLU",
            FeedForwardKind.GeGluTanh => "GeGLU (tanh GELU)",
            _ => "ReLU MLP",
        } + (c.FeedForwardBias ? " with biases" : ""));
        var embedding = new List<string>();
        if (c.EmbedScale != 1f) embedding.Add($"scaled by {I(c.EmbedScale)}");
        if (c.HasProjections) embedding.Add($"width {c.EmbeddingWidth}, projected in and out");
        embedding.Add(c.TiedEmbedding ? "tied to the output head" : "separate output head");
        if (c.FinalSoftCap is float fc) embedding.Add($"logits soft-capped at {I(fc)}");
        yield return ("embedding", string.Join(", ", embedding));
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
