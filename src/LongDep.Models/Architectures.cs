namespace LongDep.Models;

/// <summary>The file formats a model can come in.</summary>
public enum ModelFormat
{
    /// <summary>A llama.cpp GGUF file.</summary>
    Gguf,
    /// <summary>A Hugging Face checkpoint folder (config.json + *.safetensors).</summary>
    HuggingFace,
}

/// <summary>The role a tensor plays inside one decoder layer.</summary>
public enum LayerRole { AttnNorm, Q, K, V, O, QBias, KBias, VBias, FfnNorm, Gate, Up, Down }

/// <summary>
/// What one (architecture, file format) pair calls its tensors, and how it stores Q/K rows.
/// Per-layer names are templates with <c>{i}</c> standing for the layer index.
/// </summary>
public sealed record ArchitectureInfo(
    string Architecture,
    ModelFormat Format,
    string TokenEmbedding,
    string OutputNorm,
    string Output,
    IReadOnlyDictionary<LayerRole, string> LayerTemplates,
    bool QkvBias,
    RopeStyle Rope)
{
    /// <summary>The name of <paramref name="role"/>'s tensor in layer <paramref name="layer"/>.</summary>
    public string LayerTensor(int layer, LayerRole role) =>
        LayerTemplates[role].Replace("{i}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

/// <summary>
/// The one table of tensor names and RoPE styles per architecture and file format (as llama.cpp keeps one),
/// plus loading a <see cref="ModelWeights"/> from any <see cref="ITensorSource"/> and the reverse for writers.
/// </summary>
public static class Architectures
{
    private static readonly IReadOnlyDictionary<LayerRole, string> GgufLayer = new Dictionary<LayerRole, string>
    {
        [LayerRole.AttnNorm] = "blk.{i}.attn_norm.weight",
        [LayerRole.Q] = "blk.{i}.attn_q.weight",
        [LayerRole.K] = "blk.{i}.attn_k.weight",
        [LayerRole.V] = "blk.{i}.attn_v.weight",
        [LayerRole.O] = "blk.{i}.attn_output.weight",
        [LayerRole.QBias] = "blk.{i}.attn_q.bias",
        [LayerRole.KBias] = "blk.{i}.attn_k.bias",
        [LayerRole.VBias] = "blk.{i}.attn_v.bias",
        [LayerRole.FfnNorm] = "blk.{i}.ffn_norm.weight",
        [LayerRole.Gate] = "blk.{i}.ffn_gate.weight",
        [LayerRole.Up] = "blk.{i}.ffn_up.weight",
        [LayerRole.Down] = "blk.{i}.ffn_down.weight",
    };

    private static readonly IReadOnlyDictionary<LayerRole, string> HfLayer = new Dictionary<LayerRole, string>
    {
        [LayerRole.AttnNorm] = "model.layers.{i}.input_layernorm.weight",
        [LayerRole.Q] = "model.layers.{i}.self_attn.q_proj.weight",
        [LayerRole.K] = "model.layers.{i}.self_attn.k_proj.weight",
        [LayerRole.V] = "model.layers.{i}.self_attn.v_proj.weight",
        [LayerRole.O] = "model.layers.{i}.self_attn.o_proj.weight",
        [LayerRole.QBias] = "model.layers.{i}.self_attn.q_proj.bias",
        [LayerRole.KBias] = "model.layers.{i}.self_attn.k_proj.bias",
        [LayerRole.VBias] = "model.layers.{i}.self_attn.v_proj.bias",
        [LayerRole.FfnNorm] = "model.layers.{i}.post_attention_layernorm.weight",
        [LayerRole.Gate] = "model.layers.{i}.mlp.gate_proj.weight",
        [LayerRole.Up] = "model.layers.{i}.mlp.up_proj.weight",
        [LayerRole.Down] = "model.layers.{i}.mlp.down_proj.weight",
    };

    private static readonly ArchitectureInfo[] Table =
    [
        new("llama", ModelFormat.Gguf, "token_embd.weight", "output_norm.weight", "output.weight", GgufLayer,
            QkvBias: false, RopeStyle.AdjacentPairs),
        new("qwen2", ModelFormat.Gguf, "token_embd.weight", "output_norm.weight", "output.weight", GgufLayer,
            QkvBias: true, RopeStyle.Halves),
        new("llama", ModelFormat.HuggingFace, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", HfLayer,
            QkvBias: false, RopeStyle.Halves),
        new("qwen2", ModelFormat.HuggingFace, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", HfLayer,
            QkvBias: true, RopeStyle.Halves),
    ];

    /// <summary>Names of the architectures the table knows.</summary>
    public static IReadOnlyList<string> Supported { get; } = ["llama", "qwen2"];

    /// <summary>
    /// The entry for <paramref name="architecture"/> in <paramref name="format"/>.
    /// <see cref="ArchitectureInfo.QkvBias"/> is the architecture's default; the model's <see cref="ModelConfig.QkvBias"/> decides.
    /// </summary>
    /// <exception cref="ArgumentException">The architecture is not in the table.</exception>
    public static ArchitectureInfo Get(string architecture, ModelFormat format) =>
        Table.FirstOrDefault(e => e.Architecture == architecture && e.Format == format)
        ?? throw new ArgumentException(
            $"unsupported architecture '{architecture}' (supported: {string.Join(", ", Supported)})", nameof(architecture));

    /// <summary>The shape, row-major [out, in], that <paramref name="cfg"/> implies for a layer tensor.</summary>
    public static long[] LayerShape(ModelConfig cfg, LayerRole role) => role switch
    {
        LayerRole.AttnNorm or LayerRole.FfnNorm => [cfg.Dim],
        LayerRole.Q => [cfg.QDim, cfg.Dim],
        LayerRole.K or LayerRole.V => [cfg.KvDim, cfg.Dim],
        LayerRole.O => [cfg.Dim, cfg.QDim],
        LayerRole.QBias => [cfg.QDim],
        LayerRole.KBias or LayerRole.VBias => [cfg.KvDim],
        LayerRole.Gate or LayerRole.Up => [cfg.FfDim, cfg.Dim],
        LayerRole.Down => [cfg.Dim, cfg.FfDim],
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>
    /// Reads every tensor of the model <paramref name="cfg"/> describes from <paramref name="src"/>, checking each
    /// shape before reading it. The output head is tied to the token embedding (the same array) when the config
    /// says so or the file has no output tensor. Q and K rows (and their biases) come out in the order
    /// <paramref name="cfg"/>'s <see cref="ModelConfig.Rope"/> expects: when the file's convention differs they are permuted.
    /// </summary>
    /// <exception cref="ModelFormatException">A tensor is missing, has the wrong shape, or is unexpected.</exception>
    public static ModelWeights LoadWeights(ITensorSource src, ModelConfig cfg, ModelFormat format)
    {
        string source = src.SourcePath;
        cfg.Validate(source);
        var info = Get(cfg.Architecture, format);
        var used = new HashSet<string>(StringComparer.Ordinal);
        bool permute = cfg.Rope != info.Rope;

        float[] Read(string name, long[] shape)
        {
            if (!src.Tensors.TryGetValue(name, out var t))
                throw new ModelFormatException(source,
                    $"tensor '{name}' is missing (expected shape {FormatShape(shape)} for a {cfg.Architecture} model)");
            if (!t.Shape.AsSpan().SequenceEqual(shape))
                throw new ModelFormatException(source,
                    $"tensor '{name}' has shape {FormatShape(t.Shape)}, expected {FormatShape(shape)} from the model config");
            used.Add(name);
            return src.ReadF32(name);
        }

        float[] ReadLayer(int i, LayerRole role) => Read(info.LayerTensor(i, role), LayerShape(cfg, role));

        float[] ReadQk(int i, LayerRole role, int heads)
        {
            var w = ReadLayer(i, role);
            if (!permute) return w;
            int cols = role is LayerRole.Q or LayerRole.K ? cfg.Dim : 1;
            return info.Rope == RopeStyle.Halves
                ? PermuteRowsHalvesToAdjacent(w, heads, cfg.HeadDim, cols)
                : PermuteRowsAdjacentToHalves(w, heads, cfg.HeadDim, cols);
        }

        var embedding = Read(info.TokenEmbedding, [cfg.VocabSize, cfg.Dim]);
        var layers = new LayerWeights[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            if (!cfg.QkvBias)
            {
                foreach (var b in (ReadOnlySpan<LayerRole>)[LayerRole.QBias, LayerRole.KBias, LayerRole.VBias])
                {
                    string bn = info.LayerTensor(i, b);
                    if (src.Tensors.ContainsKey(bn))
                        throw new ModelFormatException(source,
                            $"tensor '{bn}' is present but the config says the model has no Q/K/V bias; fix the config (attention_bias / architecture)");
                }
            }
            layers[i] = new LayerWeights
            {
                AttnNorm = ReadLayer(i, LayerRole.AttnNorm),
                Wq = ReadQk(i, LayerRole.Q, cfg.Heads),
                Wk = ReadQk(i, LayerRole.K, cfg.KvHeads),
                Wv = ReadLayer(i, LayerRole.V),
                Wo = ReadLayer(i, LayerRole.O),
                Bq = cfg.QkvBias ? ReadQk(i, LayerRole.QBias, cfg.Heads) : null,
                Bk = cfg.QkvBias ? ReadQk(i, LayerRole.KBias, cfg.KvHeads) : null,
                Bv = cfg.QkvBias ? ReadLayer(i, LayerRole.VBias) : null,
                FfnNorm = ReadLayer(i, LayerRole.FfnNorm),
                WGate = ReadLayer(i, LayerRole.Gate),
                WUp = ReadLayer(i, LayerRole.Up),
                WDown = ReadLayer(i, LayerRole.Down),
            };
        }
        var outputNorm = Read(info.OutputNorm, [cfg.Dim]);

        bool tied = cfg.TiedEmbedding || !src.Tensors.ContainsKey(info.Output);
        float[] output;
        if (tied)
        {
            output = embedding;
            used.Add(info.Output); // a tied checkpoint may still carry a copy; the config says to use the embedding
        }
        else
        {
            output = Read(info.Output, [cfg.VocabSize, cfg.Dim]);
        }

        var unexpected = src.Tensors.Keys.Where(n => !used.Contains(n) && !IsIgnorable(n)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new ModelFormatException(source,
                $"{unexpected.Count} tensor(s) that a {cfg.Architecture} model does not use, e.g. '{unexpected[0]}'; " +
                "this engine would ignore them and compute something else than the model (unsupported variant?)");

        var weights = new ModelWeights
        {
            Config = tied && !cfg.TiedEmbedding ? cfg with { TiedEmbedding = true } : cfg,
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = outputNorm,
            Output = output,
        };
        weights.Validate(source);
        return weights;
    }

    /// <summary>
    /// The tensors a writer should store for <paramref name="w"/> in <paramref name="format"/>, named and shaped as the
    /// table says, in a stable order. Q/K rows are permuted lazily (one tensor at a time) when the weights' RoPE
    /// convention differs from the format's; all other arrays are handed out as they are (no copy). The output head
    /// is left out when tied.
    /// </summary>
    public static IEnumerable<(string Name, float[] Data, long[] Shape)> TensorsFor(ModelWeights w, ModelFormat format)
    {
        var cfg = w.Config;
        var info = Get(cfg.Architecture, format);
        bool permute = cfg.Rope != info.Rope;

        float[] Qk(float[] data, int heads, int cols)
        {
            if (!permute) return data;
            return cfg.Rope == RopeStyle.Halves
                ? PermuteRowsHalvesToAdjacent(data, heads, cfg.HeadDim, cols)
                : PermuteRowsAdjacentToHalves(data, heads, cfg.HeadDim, cols);
        }

        (string, float[], long[]) L(int i, LayerRole role, float[] data) => (info.LayerTensor(i, role), data, LayerShape(cfg, role));

        yield return (info.TokenEmbedding, w.TokenEmbedding, [cfg.VocabSize, cfg.Dim]);
        for (int i = 0; i < w.Layers.Length; i++)
        {
            var l = w.Layers[i];
            yield return L(i, LayerRole.AttnNorm, l.AttnNorm);
            yield return L(i, LayerRole.Q, Qk(l.Wq, cfg.Heads, cfg.Dim));
            yield return L(i, LayerRole.K, Qk(l.Wk, cfg.KvHeads, cfg.Dim));
            yield return L(i, LayerRole.V, l.Wv);
            yield return L(i, LayerRole.O, l.Wo);
            if (cfg.QkvBias)
            {
                yield return L(i, LayerRole.QBias, Qk(Need(l.Bq, i, "q bias"), cfg.Heads, 1));
                yield return L(i, LayerRole.KBias, Qk(Need(l.Bk, i, "k bias"), cfg.KvHeads, 1));
                yield return L(i, LayerRole.VBias, Need(l.Bv, i, "v bias"));
            }
            yield return L(i, LayerRole.FfnNorm, l.FfnNorm);
            yield return L(i, LayerRole.Gate, l.WGate);
            yield return L(i, LayerRole.Up, l.WUp);
            yield return L(i, LayerRole.Down, l.WDown);
        }
        yield return (info.OutputNorm, w.OutputNorm, [cfg.Dim]);
        if (!cfg.TiedEmbedding && !ReferenceEquals(w.Output, w.TokenEmbedding))
            yield return (info.Output, w.Output, [cfg.VocabSize, cfg.Dim]);

        static float[] Need(float[]? a, int layer, string what) =>
            a ?? throw new ArgumentException($"layer {layer} has no {what} but the config says the model has Q/K/V biases");
    }

    /// <summary>
    /// Reorders the rows of a Q or K projection (or bias, with <paramref name="cols"/> = 1) from the halves RoPE layout
    /// (Hugging Face: dimension j pairs with j + d/2) to the adjacent-pairs layout (GGUF llama: 2j pairs with 2j+1).
    /// Within each head, halves row <c>p·d/2 + j</c> (p = 0, 1) becomes adjacent row <c>2j + p</c>; this is the
    /// permutation llama.cpp's converter applies to Hugging Face Llama Q/K weights.
    /// </summary>
    public static float[] PermuteRowsHalvesToAdjacent(float[] w, int heads, int headDim, int cols) =>
        PermuteRows(w, heads, headDim, cols, toAdjacent: true);

    /// <summary>The inverse of <see cref="PermuteRowsHalvesToAdjacent"/>: adjacent row <c>2j + p</c> becomes halves row <c>p·d/2 + j</c>.</summary>
    public static float[] PermuteRowsAdjacentToHalves(float[] w, int heads, int headDim, int cols) =>
        PermuteRows(w, heads, headDim, cols, toAdjacent: false);

    private static float[] PermuteRows(float[] w, int heads, int headDim, int cols, bool toAdjacent)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (heads <= 0 || cols <= 0 || headDim <= 0 || headDim % 2 != 0)
            throw new ArgumentException($"heads ({heads}) and cols ({cols}) must be positive and headDim ({headDim}) positive and even");
        if ((long)heads * headDim * cols != w.LongLength)
            throw new ArgumentException($"array has {w.LongLength} elements, expected heads×headDim×cols = {(long)heads * headDim * cols}");

        var result = new float[w.Length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
        {
            int headRow = h * headDim;
            for (int j = 0; j < half; j++)
            {
                for (int p = 0; p < 2; p++)
                {
                    int halvesRow = headRow + p * half + j;
                    int adjacentRow = headRow + 2 * j + p;
                    int from = toAdjacent ? halvesRow : adjacentRow;
                    int to = toAdjacent ? adjacentRow : halvesRow;
                    w.AsSpan(from * cols, cols).CopyTo(result.AsSpan(to * cols, cols));
                }
            }
        }
        return result;
    }

    /// <summary>Tensors a file may carry that are derived from the config and change nothing (old HF Llama checkpoints).</summary>
    private static bool IsIgnorable(string name) => name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal);

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
