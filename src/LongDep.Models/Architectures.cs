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
public enum LayerRole
{
    AttnNorm, AttnNormBias, Q, K, V, O, QBias, KBias, VBias, OBias, QNorm, KNorm, PostAttnNorm,
    FfnNorm, FfnNormBias, Gate, Up, Down, UpBias, DownBias, PostFfnNorm,
    /// <summary>Q, K and V fused in one [QDim + 2·KvDim, Dim] tensor (Phi-3).</summary>
    Qkv,
    /// <summary>Gate and up fused in one [2·FfDim, Dim] tensor, gate rows first (Phi-3).</summary>
    GateUp,
}

/// <summary>The role of a tensor outside the layers.</summary>
public enum ModelRole { TokenEmbedding, PositionEmbedding, ProjectIn, ProjectOut, OutputNorm, OutputNormBias, Output }

/// <summary>
/// What one (architecture, file format) pair calls its tensors, how it stores Q/K rows, and how its norm weights are
/// stored. Per-layer names are templates with <c>{i}</c> standing for the layer index. A role absent from the table
/// does not exist in that family; which of the present ones a model uses follows its <see cref="ModelConfig"/>.
/// </summary>
public sealed record ArchitectureInfo(
    string Architecture,
    ModelFormat Format,
    IReadOnlyDictionary<ModelRole, string> Names,
    IReadOnlyDictionary<LayerRole, string> LayerTemplates,
    RopeStyle Rope)
{
    /// <summary>
    /// Added to every RMSNorm weight at load and subtracted on write: Hugging Face Gemma stores w for a norm that
    /// multiplies by (1 + w), computed in float32 as transformers does; llama.cpp's converter already added the 1.
    /// </summary>
    public float NormWeightOffset { get; init; }

    /// <summary>
    /// Other prefixes a checkpoint may use for the same names, as (table prefix, file prefix): OPT-350m's file says
    /// <c>decoder.</c> where others say <c>model.decoder.</c>.
    /// </summary>
    public IReadOnlyList<(string Canonical, string Alternative)> Prefixes { get; init; } = [];

    /// <summary>Tensors a file may carry that are derived from the config and change nothing (name suffixes).</summary>
    public IReadOnlyList<string> IgnorableSuffixes { get; init; } = [".rotary_emb.inv_freq"];

    public string TokenEmbedding => Names[ModelRole.TokenEmbedding];
    public string OutputNorm => Names[ModelRole.OutputNorm];
    public string Output => Names[ModelRole.Output];

    /// <summary>Whether the family has a tensor in <paramref name="role"/>.</summary>
    public bool Has(LayerRole role) => LayerTemplates.ContainsKey(role);

    /// <summary>The name of <paramref name="role"/>'s tensor in layer <paramref name="layer"/>.</summary>
    public string LayerTensor(int layer, LayerRole role) =>
        (LayerTemplates.TryGetValue(role, out var t) ? t : throw new ArgumentException($"{Architecture} ({Format}) has no {role} tensor", nameof(role)))
        .Replace("{i}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

/// <summary>
/// The one table of tensor names and RoPE styles per architecture and file format (as llama.cpp keeps one),
/// plus loading a <see cref="ModelWeights"/> from any <see cref="ITensorSource"/> and the reverse for writers.
/// </summary>
public static class Architectures
{
    private static Dictionary<LayerRole, string> Layer(string prefix, params (LayerRole Role, string Name)[] roles) =>
        roles.ToDictionary(r => r.Role, r => prefix + r.Name);

    private static Dictionary<ModelRole, string> Globals(params (ModelRole Role, string Name)[] roles) =>
        roles.ToDictionary(r => r.Role, r => r.Name);

    private static readonly Dictionary<ModelRole, string> GgufGlobals = Globals(
        (ModelRole.TokenEmbedding, "token_embd.weight"), (ModelRole.OutputNorm, "output_norm.weight"), (ModelRole.Output, "output.weight"));

    private static readonly (LayerRole, string)[] GgufAttention =
    [
        (LayerRole.AttnNorm, "attn_norm.weight"), (LayerRole.Q, "attn_q.weight"), (LayerRole.K, "attn_k.weight"),
        (LayerRole.V, "attn_v.weight"), (LayerRole.O, "attn_output.weight"),
    ];
    private static readonly (LayerRole, string)[] GgufBias =
        [(LayerRole.QBias, "attn_q.bias"), (LayerRole.KBias, "attn_k.bias"), (LayerRole.VBias, "attn_v.bias")];
    private static readonly (LayerRole, string)[] GgufQkNorm = [(LayerRole.QNorm, "attn_q_norm.weight"), (LayerRole.KNorm, "attn_k_norm.weight")];
    private static readonly (LayerRole, string)[] GgufFfn =
    [
        (LayerRole.FfnNorm, "ffn_norm.weight"), (LayerRole.Gate, "ffn_gate.weight"), (LayerRole.Up, "ffn_up.weight"),
        (LayerRole.Down, "ffn_down.weight"),
    ];
    private static readonly (LayerRole, string)[] GgufSandwich =
        [(LayerRole.PostAttnNorm, "post_attention_norm.weight"), (LayerRole.PostFfnNorm, "post_ffw_norm.weight")];

    private static readonly Dictionary<ModelRole, string> HfGlobals = Globals(
        (ModelRole.TokenEmbedding, "model.embed_tokens.weight"), (ModelRole.OutputNorm, "model.norm.weight"), (ModelRole.Output, "lm_head.weight"));

    private static readonly (LayerRole, string)[] HfAttention =
    [
        (LayerRole.AttnNorm, "input_layernorm.weight"), (LayerRole.Q, "self_attn.q_proj.weight"), (LayerRole.K, "self_attn.k_proj.weight"),
        (LayerRole.V, "self_attn.v_proj.weight"), (LayerRole.O, "self_attn.o_proj.weight"),
    ];
    private static readonly (LayerRole, string)[] HfBias =
        [(LayerRole.QBias, "self_attn.q_proj.bias"), (LayerRole.KBias, "self_attn.k_proj.bias"), (LayerRole.VBias, "self_attn.v_proj.bias")];
    private static readonly (LayerRole, string)[] HfQkNorm = [(LayerRole.QNorm, "self_attn.q_norm.weight"), (LayerRole.KNorm, "self_attn.k_norm.weight")];
    private static readonly (LayerRole, string)[] HfMlp =
        [(LayerRole.Gate, "mlp.gate_proj.weight"), (LayerRole.Up, "mlp.up_proj.weight"), (LayerRole.Down, "mlp.down_proj.weight")];

    private const string Blk = "blk.{i}.";
    private const string HfLayer = "model.layers.{i}.";

    private static readonly ArchitectureInfo[] Table =
    [
        // llama.cpp (src/llama-arch.cpp) names; "llama" also carries Mistral-style GGUF files.
        new("llama", ModelFormat.Gguf, GgufGlobals, Layer(Blk, [.. GgufAttention, .. GgufFfn]), RopeStyle.AdjacentPairs),
        new("qwen2", ModelFormat.Gguf, GgufGlobals, Layer(Blk, [.. GgufAttention, .. GgufBias, .. GgufFfn]), RopeStyle.Halves),
        new("qwen3", ModelFormat.Gguf, GgufGlobals, Layer(Blk, [.. GgufAttention, .. GgufQkNorm, .. GgufFfn]), RopeStyle.Halves),
        new("gemma2", ModelFormat.Gguf, GgufGlobals, Layer(Blk, [.. GgufAttention, .. GgufFfn, .. GgufSandwich]), RopeStyle.Halves),
        new("gemma3", ModelFormat.Gguf, GgufGlobals, Layer(Blk, [.. GgufAttention, .. GgufQkNorm, .. GgufFfn, .. GgufSandwich]), RopeStyle.Halves),
        new("phi3", ModelFormat.Gguf, GgufGlobals, Layer(Blk, [.. GgufAttention, (LayerRole.Qkv, "attn_qkv.weight"),
            (LayerRole.FfnNorm, "ffn_norm.weight"), (LayerRole.GateUp, "ffn_up.weight"), (LayerRole.Down, "ffn_down.weight")]), RopeStyle.Halves),

        // transformers' module names.
        new("llama", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [.. HfAttention, .. HfBias, (LayerRole.OBias, "self_attn.o_proj.bias"),
            (LayerRole.FfnNorm, "post_attention_layernorm.weight"), .. HfMlp]), RopeStyle.Halves),
        new("mistral", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [.. HfAttention, (LayerRole.FfnNorm, "post_attention_layernorm.weight"), .. HfMlp]), RopeStyle.Halves),
        new("qwen2", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [.. HfAttention, .. HfBias, (LayerRole.FfnNorm, "post_attention_layernorm.weight"), .. HfMlp]), RopeStyle.Halves),
        new("qwen3", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [.. HfAttention, .. HfQkNorm, (LayerRole.FfnNorm, "post_attention_layernorm.weight"), .. HfMlp]), RopeStyle.Halves),
        new("gemma2", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [.. HfAttention, (LayerRole.PostAttnNorm, "post_attention_layernorm.weight"),
            (LayerRole.FfnNorm, "pre_feedforward_layernorm.weight"), (LayerRole.PostFfnNorm, "post_feedforward_layernorm.weight"), .. HfMlp]), RopeStyle.Halves)
        { NormWeightOffset = 1f },
        new("gemma3", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [.. HfAttention, .. HfQkNorm, (LayerRole.PostAttnNorm, "post_attention_layernorm.weight"),
            (LayerRole.FfnNorm, "pre_feedforward_layernorm.weight"), (LayerRole.PostFfnNorm, "post_feedforward_layernorm.weight"), .. HfMlp]), RopeStyle.Halves)
        { NormWeightOffset = 1f },
        new("phi3", ModelFormat.HuggingFace, HfGlobals, Layer(HfLayer, [(LayerRole.AttnNorm, "input_layernorm.weight"),
            (LayerRole.Qkv, "self_attn.qkv_proj.weight"), (LayerRole.O, "self_attn.o_proj.weight"),
            (LayerRole.FfnNorm, "post_attention_layernorm.weight"), (LayerRole.GateUp, "mlp.gate_up_proj.weight"), (LayerRole.Down, "mlp.down_proj.weight")]), RopeStyle.Halves),
        new("opt", ModelFormat.HuggingFace,
            Globals((ModelRole.TokenEmbedding, "model.decoder.embed_tokens.weight"), (ModelRole.PositionEmbedding, "model.decoder.embed_positions.weight"),
                (ModelRole.ProjectIn, "model.decoder.project_in.weight"), (ModelRole.ProjectOut, "model.decoder.project_out.weight"),
                (ModelRole.OutputNorm, "model.decoder.final_layer_norm.weight"), (ModelRole.OutputNormBias, "model.decoder.final_layer_norm.bias"),
                (ModelRole.Output, "lm_head.weight")),
            Layer("model.decoder.layers.{i}.",
                (LayerRole.AttnNorm, "self_attn_layer_norm.weight"), (LayerRole.AttnNormBias, "self_attn_layer_norm.bias"),
                (LayerRole.Q, "self_attn.q_proj.weight"), (LayerRole.K, "self_attn.k_proj.weight"), (LayerRole.V, "self_attn.v_proj.weight"),
                (LayerRole.O, "self_attn.out_proj.weight"), (LayerRole.QBias, "self_attn.q_proj.bias"), (LayerRole.KBias, "self_attn.k_proj.bias"),
                (LayerRole.VBias, "self_attn.v_proj.bias"), (LayerRole.OBias, "self_attn.out_proj.bias"),
                (LayerRole.FfnNorm, "final_layer_norm.weight"), (LayerRole.FfnNormBias, "final_layer_norm.bias"),
                (LayerRole.Up, "fc1.weight"), (LayerRole.UpBias, "fc1.bias"), (LayerRole.Down, "fc2.weight"), (LayerRole.DownBias, "fc2.bias")),
            RopeStyle.Halves)
        { Prefixes = [("model.decoder.", "decoder.")] },
    ];

    /// <summary>Names of the architectures the table knows (in either format).</summary>
    public static IReadOnlyList<string> Supported { get; } = Table.Select(e => e.Architecture).Distinct().ToArray();

    /// <summary>Whether <paramref name="architecture"/> can be read from <paramref name="format"/>.</summary>
    public static bool Has(string architecture, ModelFormat format) => Table.Any(e => e.Architecture == architecture && e.Format == format);

    /// <summary>The entry for <paramref name="architecture"/> in <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentException">The architecture is not in the table for that format.</exception>
    public static ArchitectureInfo Get(string architecture, ModelFormat format) =>
        Table.FirstOrDefault(e => e.Architecture == architecture && e.Format == format)
        ?? throw new ArgumentException(
            $"unsupported architecture '{architecture}' in {(format == ModelFormat.Gguf ? "GGUF" : "Hugging Face")} files (supported: " +
            string.Join(", ", Table.Where(e => e.Format == format).Select(e => e.Architecture)) + ")", nameof(architecture));

    /// <summary>The shape, row-major [out, in], that <paramref name="cfg"/> implies for a layer tensor.</summary>
    public static long[] LayerShape(ModelConfig cfg, LayerRole role) => role switch
    {
        LayerRole.AttnNorm or LayerRole.AttnNormBias or LayerRole.FfnNorm or LayerRole.FfnNormBias
            or LayerRole.PostAttnNorm or LayerRole.PostFfnNorm or LayerRole.OBias or LayerRole.DownBias => [cfg.Dim],
        LayerRole.Q => [cfg.QDim, cfg.Dim],
        LayerRole.K or LayerRole.V => [cfg.KvDim, cfg.Dim],
        LayerRole.Qkv => [cfg.QDim + 2L * cfg.KvDim, cfg.Dim],
        LayerRole.O => [cfg.Dim, cfg.QDim],
        LayerRole.QBias => [cfg.QDim],
        LayerRole.KBias or LayerRole.VBias => [cfg.KvDim],
        LayerRole.QNorm or LayerRole.KNorm => [cfg.HeadDim],
        LayerRole.Gate or LayerRole.Up => [cfg.FfDim, cfg.Dim],
        LayerRole.GateUp => [2L * cfg.FfDim, cfg.Dim],
        LayerRole.UpBias => [cfg.FfDim],
        LayerRole.Down => [cfg.Dim, cfg.FfDim],
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>The shape <paramref name="cfg"/> implies for a tensor outside the layers.</summary>
    public static long[] ModelShape(ModelConfig cfg, ModelRole role) => role switch
    {
        ModelRole.TokenEmbedding or ModelRole.Output => [cfg.VocabSize, cfg.EmbeddingWidth],
        ModelRole.PositionEmbedding => [cfg.PositionRows, cfg.Dim],
        ModelRole.ProjectIn => [cfg.Dim, cfg.EmbeddingWidth],
        ModelRole.ProjectOut => [cfg.EmbeddingWidth, cfg.Dim],
        ModelRole.OutputNorm or ModelRole.OutputNormBias => [cfg.Dim],
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>
    /// Reads every tensor of the model <paramref name="cfg"/> describes from <paramref name="src"/>, checking each
    /// shape before reading it. The output head is tied to the token embedding (the same array) when the config
    /// says so or the file has no output tensor. Fused tensors (Phi-3's qkv and gate_up) are split into their parts.
    /// Q and K rows (and their biases and norms) come out in the order <paramref name="cfg"/>'s
    /// <see cref="ModelConfig.Rope"/> expects: when the file's convention differs they are permuted.
    /// </summary>
    /// <exception cref="ModelFormatException">A tensor is missing, has the wrong shape, or is unexpected.</exception>
    public static ModelWeights LoadWeights(ITensorSource src, ModelConfig cfg, ModelFormat format)
    {
        string source = src.SourcePath;
        cfg.Validate(source);
        var info = Get(cfg.Architecture, format);
        var used = new HashSet<string>(StringComparer.Ordinal);
        bool permute = cfg.Rope != info.Rope && cfg.Positions == PositionKind.Rope;
        float offset = cfg.Norm == NormKind.Rms ? info.NormWeightOffset : 0f;

        string? Find(string name)
        {
            if (src.Tensors.ContainsKey(name)) return name;
            foreach (var (canonical, alternative) in info.Prefixes)
            {
                if (!name.StartsWith(canonical, StringComparison.Ordinal)) continue;
                string alt = alternative + name[canonical.Length..];
                if (src.Tensors.ContainsKey(alt)) return alt;
            }
            return null;
        }

        string Check(string name, long[] shape)
        {
            string actual = Find(name) ?? throw new ModelFormatException(source,
                $"tensor '{name}' is missing (expected shape {FormatShape(shape)} for a {cfg.Architecture} model)");
            var t = src.Tensors[actual];
            if (!t.Shape.AsSpan().SequenceEqual(shape))
                throw new ModelFormatException(source,
                    $"tensor '{actual}' has shape {FormatShape(t.Shape)}, expected {FormatShape(shape)} from the model config");
            used.Add(actual);
            return actual;
        }

        float[] Read(string name, long[] shape) => src.ReadF32(Check(name, shape));

        // Matrices stay in their stored type, in the file where the source allows; only vectors become float32.
        WeightMatrix ReadMatrix(string name, long[] shape) => src.ReadMatrix(Check(name, shape));

        float[] Global(ModelRole role) => Read(info.Names[role], ModelShape(cfg, role));
        WeightMatrix GlobalMatrix(ModelRole role) => ReadMatrix(info.Names[role], ModelShape(cfg, role));

        float[] NormWeight(float[] w)
        {
            if (offset != 0f)
                for (int k = 0; k < w.Length; k++) w[k] = offset + w[k];
            return w;
        }

        float[] Qk(float[] w, int heads, int cols) =>
            !permute ? w
            : info.Rope == RopeStyle.Halves
                ? PermuteRowsHalvesToAdjacent(w, heads, cfg.HeadDim, cols)
                : PermuteRowsAdjacentToHalves(w, heads, cfg.HeadDim, cols);

        WeightMatrix QkMatrix(WeightMatrix w) =>
            !permute ? w : w.PermuteRows(cfg.Dim, r => RopeSourceRow(r, cfg.HeadDim, toAdjacent: info.Rope == RopeStyle.Halves));

        void Refuse(int i, LayerRole role, string why)
        {
            if (!info.Has(role)) return;
            string name = info.LayerTensor(i, role);
            if (Find(name) is { } present)
                throw new ModelFormatException(source,
                    $"tensor '{present}' is present but the config says the model has {why}; fix the config (or the architecture it names)");
        }

        var embedding = GlobalMatrix(ModelRole.TokenEmbedding);
        var layers = new LayerWeights[cfg.Layers];
        bool sandwich = cfg.NormPlacement == NormPlacement.Sandwich;
        for (int i = 0; i < cfg.Layers; i++)
        {
            float[] L(LayerRole role) => Read(info.LayerTensor(i, role), LayerShape(cfg, role));
            WeightMatrix M(LayerRole role) => ReadMatrix(info.LayerTensor(i, role), LayerShape(cfg, role));
            float[]? Maybe(bool wanted, LayerRole role, string why)
            {
                if (wanted) return L(role);
                Refuse(i, role, why);
                return null;
            }

            WeightMatrix wq, wk, wv;
            if (info.Has(LayerRole.Qkv) && (!info.Has(LayerRole.Q) || Find(info.LayerTensor(i, LayerRole.Qkv)) is not null))
            {
                var qkv = M(LayerRole.Qkv);
                wq = qkv.SliceRows(cfg.Dim, 0, cfg.QDim);
                wk = qkv.SliceRows(cfg.Dim, cfg.QDim, cfg.KvDim);
                wv = qkv.SliceRows(cfg.Dim, cfg.QDim + cfg.KvDim, cfg.KvDim);
            }
            else
            {
                wq = M(LayerRole.Q);
                wk = M(LayerRole.K);
                wv = M(LayerRole.V);
            }

            WeightMatrix? gate;
            WeightMatrix up;
            if (info.Has(LayerRole.GateUp))
            {
                var gu = M(LayerRole.GateUp);
                gate = gu.SliceRows(cfg.Dim, 0, cfg.FfDim);
                up = gu.SliceRows(cfg.Dim, cfg.FfDim, cfg.FfDim);
            }
            else
            {
                gate = cfg.HasGate ? M(LayerRole.Gate) : null;
                if (!cfg.HasGate) Refuse(i, LayerRole.Gate, "no gated feed-forward");
                up = M(LayerRole.Up);
            }

            string noBias = "no Q/K/V bias";
            layers[i] = new LayerWeights
            {
                AttnNorm = NormWeight(L(LayerRole.AttnNorm)),
                AttnNormBias = Maybe(cfg.NormHasBias, LayerRole.AttnNormBias, "no norm bias"),
                Wq = QkMatrix(wq),
                Wk = QkMatrix(wk),
                Wv = wv,
                Wo = M(LayerRole.O),
                Bq = Maybe(cfg.QkvBias, LayerRole.QBias, noBias) is { } bq ? Qk(bq, cfg.Heads, 1) : null,
                Bk = Maybe(cfg.QkvBias, LayerRole.KBias, noBias) is { } bk ? Qk(bk, cfg.KvHeads, 1) : null,
                Bv = Maybe(cfg.QkvBias, LayerRole.VBias, noBias),
                Bo = Maybe(cfg.OutputProjectionBias, LayerRole.OBias, "no attention output bias"),
                QNorm = Maybe(cfg.QkNorm, LayerRole.QNorm, "no q/k norm") is { } qn ? Qk(NormWeight(qn), 1, 1) : null,
                KNorm = Maybe(cfg.QkNorm, LayerRole.KNorm, "no q/k norm") is { } kn ? Qk(NormWeight(kn), 1, 1) : null,
                PostAttnNorm = Maybe(sandwich, LayerRole.PostAttnNorm, "no post-attention norm") is { } pa ? NormWeight(pa) : null,
                FfnNorm = NormWeight(L(LayerRole.FfnNorm)),
                FfnNormBias = Maybe(cfg.NormHasBias, LayerRole.FfnNormBias, "no norm bias"),
                WGate = gate,
                WUp = up,
                WDown = M(LayerRole.Down),
                BUp = Maybe(cfg.FeedForwardBias, LayerRole.UpBias, "no feed-forward bias"),
                BDown = Maybe(cfg.FeedForwardBias, LayerRole.DownBias, "no feed-forward bias"),
                PostFfnNorm = Maybe(sandwich, LayerRole.PostFfnNorm, "no post-feed-forward norm") is { } pf ? NormWeight(pf) : null,
            };
        }

        float[]? outputNorm = null, outputNormBias = null;
        if (cfg.FinalNorm)
        {
            outputNorm = NormWeight(Global(ModelRole.OutputNorm));
            if (cfg.NormHasBias) outputNormBias = Global(ModelRole.OutputNormBias);
        }
        float[]? positions = cfg.Positions == PositionKind.Learned ? Global(ModelRole.PositionEmbedding) : null;
        WeightMatrix? projectIn = cfg.HasProjections ? GlobalMatrix(ModelRole.ProjectIn) : null;
        WeightMatrix? projectOut = cfg.HasProjections ? GlobalMatrix(ModelRole.ProjectOut) : null;

        bool tied = cfg.TiedEmbedding || Find(info.Output) is null;
        WeightMatrix output;
        if (tied)
        {
            output = embedding;
            if (Find(info.Output) is { } copy) used.Add(copy); // a tied checkpoint may still carry a copy; the config says to use the embedding
        }
        else
        {
            output = GlobalMatrix(ModelRole.Output);
        }

        // GGUF files carry RoPE scaling as tensors; the config has read them.
        if (cfg.RopeScaling.FrequencyFactors is not null && Find("rope_freqs.weight") is { } rf) used.Add(rf);
        if (cfg.RopeScaling.Type == RopeScalingType.LongRope)
            foreach (string f in (ReadOnlySpan<string>)["rope_factors_long.weight", "rope_factors_short.weight"])
                if (Find(f) is { } present) used.Add(present);

        var unexpected = src.Tensors.Keys
            .Where(n => !used.Contains(n) && !info.IgnorableSuffixes.Any(s => n.EndsWith(s, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new ModelFormatException(source,
                $"{unexpected.Count} tensor(s) that a {cfg.Architecture} model as configured does not use, e.g. '{unexpected[0]}'; " +
                "this engine would ignore them and compute something else than the model (unsupported variant?)");

        var weights = new ModelWeights
        {
            Config = tied && !cfg.TiedEmbedding ? cfg with { TiedEmbedding = true } : cfg,
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = outputNorm,
            OutputNormBias = outputNormBias,
            Output = output,
            PositionEmbedding = positions,
            ProjectIn = projectIn,
            ProjectOut = projectOut,
        };
        weights.Validate(source);
        return weights;
    }

    /// <summary>
    /// The tensors a writer should store for <paramref name="w"/> in <paramref name="format"/>, named and shaped as the
    /// table says, in a stable order. Q/K rows are permuted (one tensor at a time) when the weights' RoPE convention
    /// differs from the format's, norm weights carry the format's offset, fused tensors are joined; other arrays are
    /// handed out as they are (no copy). The output head is left out when tied.
    /// </summary>
    public static IEnumerable<(string Name, float[] Data, long[] Shape)> TensorsFor(ModelWeights w, ModelFormat format) =>
        TensorProducersFor(w, format).Select(t => (t.Name, t.Produce(), t.Shape));

    /// <summary>
    /// <see cref="TensorsFor"/> with each tensor's values computed only when its producer is called, so that a writer
    /// can hold one tensor at a time (models larger than memory).
    /// </summary>
    public static IEnumerable<(string Name, Func<float[]> Produce, long[] Shape)> TensorProducersFor(ModelWeights w, ModelFormat format)
    {
        var cfg = w.Config;
        var info = Get(cfg.Architecture, format);
        bool permute = cfg.Rope != info.Rope && cfg.Positions == PositionKind.Rope;
        float offset = cfg.Norm == NormKind.Rms ? info.NormWeightOffset : 0f;

        float[] Qk(float[] data, int heads, int cols)
        {
            if (!permute) return data;
            return cfg.Rope == RopeStyle.Halves
                ? PermuteRowsHalvesToAdjacent(data, heads, cfg.HeadDim, cols)
                : PermuteRowsAdjacentToHalves(data, heads, cfg.HeadDim, cols);
        }

        float[] Norm(float[] data)
        {
            if (offset == 0f) return data;
            var r = new float[data.Length];
            for (int k = 0; k < r.Length; k++) r[k] = data[k] - offset;
            return r;
        }

        (string, Func<float[]>, long[]) G(ModelRole role, Func<float[]> data) => (info.Names[role], data, ModelShape(cfg, role));
        static float[] F(WeightMatrix m) => m.ToFloat32();

        yield return G(ModelRole.TokenEmbedding, () => F(w.TokenEmbedding));
        if (w.PositionEmbedding is { } positions) yield return G(ModelRole.PositionEmbedding, () => positions);
        if (w.ProjectIn is { } projectIn) yield return G(ModelRole.ProjectIn, () => F(projectIn));
        if (w.ProjectOut is { } projectOut) yield return G(ModelRole.ProjectOut, () => F(projectOut));
        for (int i = 0; i < w.Layers.Length; i++)
        {
            int layer = i;
            var l = w.Layers[i];
            (string, Func<float[]>, long[]) L(LayerRole role, Func<float[]> data) => (info.LayerTensor(layer, role), data, LayerShape(cfg, role));
            yield return L(LayerRole.AttnNorm, () => Norm(l.AttnNorm));
            if (l.AttnNormBias is not null) yield return L(LayerRole.AttnNormBias, () => l.AttnNormBias);
            if (info.Has(LayerRole.Qkv))
                yield return L(LayerRole.Qkv, () => [.. Qk(F(l.Wq), cfg.Heads, cfg.Dim), .. Qk(F(l.Wk), cfg.KvHeads, cfg.Dim), .. F(l.Wv)]);
            else
            {
                yield return L(LayerRole.Q, () => Qk(F(l.Wq), cfg.Heads, cfg.Dim));
                yield return L(LayerRole.K, () => Qk(F(l.Wk), cfg.KvHeads, cfg.Dim));
                yield return L(LayerRole.V, () => F(l.Wv));
            }
            yield return L(LayerRole.O, () => F(l.Wo));
            if (cfg.QkvBias)
            {
                var (bq, bk, bv) = (Need(l.Bq, layer, "q bias"), Need(l.Bk, layer, "k bias"), Need(l.Bv, layer, "v bias"));
                yield return L(LayerRole.QBias, () => Qk(bq, cfg.Heads, 1));
                yield return L(LayerRole.KBias, () => Qk(bk, cfg.KvHeads, 1));
                yield return L(LayerRole.VBias, () => bv);
            }
            if (l.Bo is not null) yield return L(LayerRole.OBias, () => l.Bo);
            if (l.QNorm is not null) yield return L(LayerRole.QNorm, () => Norm(Qk(l.QNorm, 1, 1)));
            if (l.KNorm is not null) yield return L(LayerRole.KNorm, () => Norm(Qk(l.KNorm, 1, 1)));
            if (l.PostAttnNorm is not null) yield return L(LayerRole.PostAttnNorm, () => Norm(l.PostAttnNorm));
            yield return L(LayerRole.FfnNorm, () => Norm(l.FfnNorm));
            if (l.FfnNormBias is not null) yield return L(LayerRole.FfnNormBias, () => l.FfnNormBias);
            if (info.Has(LayerRole.GateUp))
            {
                var gate = Need(l.WGate, layer, "gate");
                yield return L(LayerRole.GateUp, () => [.. F(gate), .. F(l.WUp)]);
            }
            else
            {
                if (l.WGate is not null) yield return L(LayerRole.Gate, () => F(l.WGate));
                yield return L(LayerRole.Up, () => F(l.WUp));
            }
            yield return L(LayerRole.Down, () => F(l.WDown));
            if (l.BUp is not null) yield return L(LayerRole.UpBias, () => l.BUp);
            if (l.BDown is not null) yield return L(LayerRole.DownBias, () => l.BDown);
            if (l.PostFfnNorm is not null) yield return L(LayerRole.PostFfnNorm, () => Norm(l.PostFfnNorm));
        }
        if (w.OutputNorm is { } outputNorm) yield return G(ModelRole.OutputNorm, () => Norm(outputNorm));
        if (w.OutputNormBias is { } outputNormBias) yield return G(ModelRole.OutputNormBias, () => outputNormBias);
        if (!cfg.TiedEmbedding && !w.Output.IsSameTensor(w.TokenEmbedding))
            yield return G(ModelRole.Output, () => F(w.Output));

        static T Need<T>(T? a, int layer, string what) where T : class =>
            a ?? throw new ArgumentException($"layer {layer} has no {what} but the config says the model has one");
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

    /// <summary>
    /// The source row of destination row <paramref name="row"/> in <see cref="PermuteRowsHalvesToAdjacent"/>
    /// (<paramref name="toAdjacent"/>) or <see cref="PermuteRowsAdjacentToHalves"/>.
    /// </summary>
    public static int RopeSourceRow(int row, int headDim, bool toAdjacent)
    {
        int head = row / headDim * headDim, r = row % headDim, half = headDim / 2;
        return toAdjacent ? head + r % 2 * half + r / 2 : head + 2 * (r % half) + r / half;
    }

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

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
