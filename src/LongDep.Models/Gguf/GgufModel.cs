using LongDep.Models.Tokenization;

namespace LongDep.Models.Gguf;

/// <summary>
/// A GGUF file as a Llama-family model: the config from the file's metadata (<c>general.architecture</c> and the
/// <c>{arch}.*</c> keys), the weights through the architecture table, and a writer for tests and <c>make-model</c>.
/// </summary>
public static class GgufModel
{
    /// <summary>The model config the metadata of <paramref name="file"/> describes (llama.cpp's keys and defaults per architecture).</summary>
    /// <exception cref="ModelFormatException">A required key is missing, a value is out of range, or the file asks for something not implemented.</exception>
    public static ModelConfig ReadConfig(GgufFile file)
    {
        string src = file.SourcePath;
        string arch = file.GetString("general.architecture")
            ?? throw new ModelFormatException(src, "the metadata key 'general.architecture' is missing; this is not a model file");
        if (!Architectures.Has(arch, ModelFormat.Gguf))
            throw new ModelFormatException(src, $"unsupported architecture '{arch}' (supported in GGUF files: {string.Join(", ", GgufArchitectures)})");
        var info = Architectures.Get(arch, ModelFormat.Gguf);

        int Int(string key, int? fallback = null)
        {
            long? v = file.GetInteger($"{arch}.{key}");
            if (v is null)
                return fallback ?? throw new ModelFormatException(src, $"the metadata key '{arch}.{key}' is missing");
            if (v < 0 || v > int.MaxValue)
                throw new ModelFormatException(src, $"the metadata key '{arch}.{key}' = {v} is out of range");
            return (int)v;
        }
        double? Float(string key) => file.GetFloat($"{arch}.{key}");

        int dim = Int("embedding_length");
        int heads = Int("attention.head_count");
        if (heads <= 0) throw new ModelFormatException(src, $"'{arch}.attention.head_count' is {heads}; expected a positive count");
        int headDim = Int("attention.key_length", Int("rope.dimension_count", dim / heads));
        int ropeDims = Int("rope.dimension_count", headDim);
        if (ropeDims != headDim)
            throw new ModelFormatException(src, $"'{arch}.rope.dimension_count' = {ropeDims} rotates part of each head of {headDim}; partial rotary embeddings are not supported");
        int valueDim = Int("attention.value_length", headDim);
        if (valueDim != headDim)
            throw new ModelFormatException(src, $"value heads of {valueDim} differ from key heads of {headDim}; not supported");
        int vocab = file.Tensors.TryGetValue(info.TokenEmbedding, out var emb) && emb.Shape.Length == 2
            ? (int)Math.Min(emb.Shape[0], int.MaxValue)
            : file.GetStringArray("tokenizer.ggml.tokens")?.Length
              ?? throw new ModelFormatException(src, $"cannot tell the vocabulary size: no '{info.TokenEmbedding}' tensor and no tokenizer.ggml.tokens");
        int layers = Int("block_count");
        int context = Int("context_length", 2048);
        double eps = Float("attention.layer_norm_rms_epsilon") ?? 1e-5;
        double theta = Float("rope.freq_base") ?? 10000.0;

        // Every layer of a sliding-window file uses the window unless the architecture alternates (llama.cpp's swa pattern).
        int? window = file.GetInteger($"{arch}.attention.sliding_window") is long sw && sw > 0 ? (int)Math.Min(sw, int.MaxValue) : null;
        IReadOnlyList<bool>? slidingLayers = arch switch
        {
            "gemma2" => Enumerable.Range(0, layers).Select(i => i % 2 == 0).ToArray(),
            "gemma3" => Enumerable.Range(0, layers).Select(i => i % 6 < 5).ToArray(),
            _ => null,
        };

        var cfg = new ModelConfig
        {
            Architecture = arch,
            Layers = layers,
            Dim = dim,
            FfDim = Int("feed_forward_length"),
            Heads = heads,
            KvHeads = Int("attention.head_count_kv", heads),
            HeadDim = headDim,
            VocabSize = vocab,
            ContextLength = context,
            NormEps = (float)eps,
            RopeTheta = (float)theta,
            Rope = info.Rope,
            QkvBias = info.Has(LayerRole.QBias),
            TiedEmbedding = !file.Tensors.ContainsKey(info.Output),
            QkNorm = info.Has(LayerRole.QNorm),
            SlidingWindow = window,
            SlidingLayers = window is null ? null : slidingLayers,
            RopeScaling = ReadRopeScaling(file, arch, headDim, context),
        };
        if (arch is "gemma2" or "gemma3")
        {
            // llama.cpp: 1/sqrt(head dim), except the 27B models (46 and 62 layers), which use 1/sqrt(hidden / heads).
            bool big = (arch == "gemma2" && layers == 46) || (arch == "gemma3" && layers == 62);
            cfg = cfg with
            {
                NormPlacement = NormPlacement.Sandwich,
                FeedForward = FeedForwardKind.GeGluTanh,
                EmbedScale = MathF.Sqrt(dim),
                AttentionScale = big ? (float)(1.0 / Math.Sqrt((double)dim / heads)) : null,
                AttentionSoftCap = arch == "gemma2" ? PositiveOrNull(Float("attn_logit_softcapping") ?? 50.0) : null,
                FinalSoftCap = arch == "gemma2" ? PositiveOrNull(Float("final_logit_softcapping") ?? 30.0) : null,
                LocalRopeTheta = arch == "gemma3" ? 10000f : null,
            };
        }
        cfg.Validate(src);
        return cfg;
    }

    private static float? PositiveOrNull(double v) => v > 0 ? (float)v : null;

    /// <summary>The architectures a GGUF file may name.</summary>
    public static IReadOnlyList<string> GgufArchitectures { get; } =
        Architectures.Supported.Where(a => Architectures.Has(a, ModelFormat.Gguf)).ToArray();

    /// <summary>
    /// RoPE scaling from <c>{arch}.rope.scaling.*</c> (llama.cpp's keys), the <c>rope_freqs</c> tensor (Llama 3.x) and
    /// the <c>rope_factors_long/short</c> tensors (Phi-3 longrope).
    /// </summary>
    private static RopeScaling ReadRopeScaling(GgufFile file, string arch, int headDim, int context)
    {
        string src = file.SourcePath;
        // As llama.cpp reads them: the type defaults to linear, whose factor (rope.scaling.factor, else the older
        // rope.scale_linear) of 0 or 1 means no scaling; the attention factor applies whatever the type.
        string? type = file.GetString($"{arch}.rope.scaling.type");
        double factor = file.GetFloat($"{arch}.rope.scaling.factor") ?? file.GetFloat($"{arch}.rope.scale_linear") ?? 0;
        long original = file.GetInteger($"{arch}.rope.scaling.original_context_length") ?? 0;
        double? attn = file.GetFloat($"{arch}.rope.scaling.attn_factor");
        bool freqs = file.Tensors.ContainsKey("rope_freqs.weight");
        bool longrope = file.Tensors.ContainsKey("rope_factors_long.weight") || file.Tensors.ContainsKey("rope_factors_short.weight");
        float[] Factors(string name)
        {
            if (!file.Tensors.TryGetValue(name, out var t))
                throw new ModelFormatException(src, $"tensor '{name}' is missing (longrope needs both rope_factors_long and rope_factors_short)");
            if (t.Shape.Length != 1 || t.Shape[0] != headDim / 2)
                throw new ModelFormatException(src, $"tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{headDim / 2}] (head dimension / 2)");
            return file.ReadF32(name);
        }

        if (longrope)
        {
            return new RopeScaling
            {
                Type = RopeScalingType.LongRope,
                OriginalContext = (int)Math.Clamp(original > 0 ? original : 4096, 1, int.MaxValue),
                AttentionFactor = attn ?? 1.0, // llama.cpp: no attn_factor key, no factor (the converter writes transformers' default)
                LongFactors = Factors("rope_factors_long.weight"),
                ShortFactors = Factors("rope_factors_short.weight"),
            };
        }
        if (freqs)
        {
            if (type is not (null or "none"))
                throw new ModelFormatException(src, $"both a rope_freqs tensor and rope.scaling.type '{type}' are given; not supported together");
            var t = file.Tensors["rope_freqs.weight"];
            if (t.Shape.Length != 1 || t.Shape[0] != headDim / 2)
                throw new ModelFormatException(src, $"tensor 'rope_freqs.weight' has shape [{string.Join(", ", t.Shape)}], expected [{headDim / 2}] (head dimension / 2)");
            return new RopeScaling { Type = RopeScalingType.Llama3, FrequencyFactors = file.ReadF32("rope_freqs.weight") };
        }
        if (type is not "yarn" && attn is double a && a != 1.0)
            throw new ModelFormatException(src,
                $"a RoPE attention factor of {a} ('{arch}.rope.scaling.attn_factor') with scaling '{type ?? "linear"}' is not supported; reading it without would give wrong scores");
        switch (type)
        {
            case "none":
                return RopeScaling.None;
            case null or "linear":
                if (factor is 0 or 1) return RopeScaling.None;
                if (!(factor > 0)) throw new ModelFormatException(src, $"linear RoPE scaling needs '{arch}.rope.scaling.factor' > 0, found {factor}");
                return new RopeScaling { Type = RopeScalingType.Linear, Factor = factor };
            case "yarn":
                if (!(factor >= 1)) throw new ModelFormatException(src, $"yarn RoPE scaling needs '{arch}.rope.scaling.factor' >= 1, found {factor}");
                return new RopeScaling
                {
                    Type = RopeScalingType.Yarn,
                    Factor = factor,
                    OriginalContext = (int)Math.Clamp(original > 0 ? original : context, 1, int.MaxValue),
                    BetaFast = file.GetFloat($"{arch}.rope.scaling.yarn_beta_fast") is double bf and > 0 ? bf : 32.0,
                    BetaSlow = file.GetFloat($"{arch}.rope.scaling.yarn_beta_slow") is double bs and > 0 ? bs : 1.0,
                    // llama.cpp multiplies its attn_factor (default 1) by 1 + 0.1 ln(factor).
                    AttentionFactor = (attn ?? 1.0) * (1.0 + 0.1 * Math.Log(factor)),
                };
            case "longrope":
                throw new ModelFormatException(src, "RoPE scaling 'longrope': longrope needs the rope_factors_long and rope_factors_short tensors, which the file lacks");
            default:
                throw new ModelFormatException(src,
                    $"RoPE scaling type '{type}' is not supported (supported: none, linear, yarn, llama3 via rope_freqs, longrope via rope_factors_*)");
        }
    }

    /// <summary>Reads every weight of the model in <paramref name="file"/>, dequantized to float32.</summary>
    public static ModelWeights Load(GgufFile file, ModelConfig? config = null) =>
        Architectures.LoadWeights(file, config ?? ReadConfig(file), ModelFormat.Gguf);

    /// <summary>
    /// Writes <paramref name="weights"/> as a GGUF file, matrices as <paramref name="type"/> (F32, F16, BF16 or a block
    /// type, quantized by <see cref="Quant.Quantize"/>; a matrix whose rows are not whole blocks falls back as
    /// llama-quantize does, see <see cref="Quant.Quantize.FitRow"/>), norms and biases always F32, with the
    /// <paramref name="vocabulary"/>'s tokenizer metadata when given. Q/K rows are permuted to the file's RoPE
    /// convention when the weights use the other one.
    /// </summary>
    public static void Save(string path, ModelWeights weights, TensorType type = TensorType.F16, GgufVocabulary? vocabulary = null, string? name = null)
    {
        var c = weights.Config;
        string a = c.Architecture;
        if (!Architectures.Has(a, ModelFormat.Gguf))
            throw new ArgumentException($"architecture '{a}' has no GGUF form (llama.cpp does not run it); write a Hugging Face folder instead");
        var w = new GgufWriter();
        w.Add("general.architecture", a);
        w.Add("general.name", name ?? $"longdep-{a}");
        w.Add($"{a}.block_count", (uint)c.Layers);
        w.Add($"{a}.context_length", (uint)c.ContextLength);
        w.Add($"{a}.embedding_length", (uint)c.Dim);
        w.Add($"{a}.feed_forward_length", (uint)c.FfDim);
        w.Add($"{a}.attention.head_count", (uint)c.Heads);
        w.Add($"{a}.attention.head_count_kv", (uint)c.KvHeads);
        w.Add($"{a}.attention.key_length", (uint)c.HeadDim);
        w.Add($"{a}.attention.value_length", (uint)c.HeadDim);
        w.Add($"{a}.rope.dimension_count", (uint)c.HeadDim);
        w.Add($"{a}.attention.layer_norm_rms_epsilon", c.NormEps);
        w.Add($"{a}.rope.freq_base", c.RopeTheta);
        if (c.SlidingWindow is int window) w.Add($"{a}.attention.sliding_window", (uint)window);
        if (a == "gemma2")
        {
            w.Add($"{a}.attn_logit_softcapping", c.AttentionSoftCap ?? 0f);
            w.Add($"{a}.final_logit_softcapping", c.FinalSoftCap ?? 0f);
        }
        var extra = new List<(string Name, float[] Data)>();
        var s = c.RopeScaling;
        switch (s.Type)
        {
            case RopeScalingType.None:
                break;
            case RopeScalingType.Linear:
                w.Add($"{a}.rope.scaling.type", "linear");
                w.Add($"{a}.rope.scaling.factor", (float)s.Factor);
                break;
            case RopeScalingType.Yarn:
                w.Add($"{a}.rope.scaling.type", "yarn");
                w.Add($"{a}.rope.scaling.factor", (float)s.Factor);
                w.Add($"{a}.rope.scaling.original_context_length", (uint)s.OriginalContext);
                w.Add($"{a}.rope.scaling.yarn_beta_fast", (float)s.BetaFast);
                w.Add($"{a}.rope.scaling.yarn_beta_slow", (float)s.BetaSlow);
                if (s.AttentionFactor is double af) w.Add($"{a}.rope.scaling.attn_factor", (float)(af / (1.0 + 0.1 * Math.Log(s.Factor))));
                break;
            case RopeScalingType.Llama3:
                extra.Add(("rope_freqs.weight", s.FrequencyFactors ?? Llama3FrequencyFactors(c)));
                break;
            case RopeScalingType.LongRope:
                w.Add($"{a}.rope.scaling.original_context_length", (uint)s.OriginalContext);
                w.Add($"{a}.rope.scaling.attn_factor", (float)RopeFrequencies.For(c, 0, 1).AttentionFactor);
                extra.Add(("rope_factors_long.weight", s.LongFactors!));
                extra.Add(("rope_factors_short.weight", s.ShortFactors!));
                break;
            default:
                throw new ArgumentException($"RoPE scaling {s.Type} has no GGUF form; write a Hugging Face folder instead");
        }
        if (vocabulary is not null) GgufVocabularyKeys.Write(w, vocabulary);
        foreach (var (tensorName, produce, shape) in Architectures.TensorProducersFor(weights, ModelFormat.Gguf))
            w.AddTensor(tensorName, shape, produce, shape.Length == 1 ? TensorType.F32 : Quant.Quantize.FitRow(type, shape[^1]));
        foreach (var (tensorName, data) in extra)
            w.AddTensor(tensorName, data, [data.Length], TensorType.F32);

        w.Write(path);
    }

    /// <summary>The per-frequency divisors llama.cpp's converter stores for llama3 scaling (the <c>rope_freqs</c> tensor).</summary>
    public static float[] Llama3FrequencyFactors(ModelConfig c)
    {
        var plain = RopeFrequencies.For(c with { RopeScaling = RopeScaling.None }, 0, 1).InverseFrequencies;
        var scaled = RopeFrequencies.For(c, 0, 1).InverseFrequencies;
        var f = new float[plain.Length];
        for (int i = 0; i < f.Length; i++) f[i] = (float)(plain[i] / scaled[i]);
        return f;
    }
}

/// <summary>Reads and writes the <c>tokenizer.ggml.*</c> keys of a GGUF file as a <see cref="GgufVocabulary"/>.</summary>
public static class GgufVocabularyKeys
{
    /// <summary>The vocabulary in <paramref name="file"/>; null when the file has no tokenizer.</summary>
    public static GgufVocabulary? Read(GgufFile file)
    {
        string? model = file.GetString("tokenizer.ggml.model");
        string[]? tokens = file.GetStringArray("tokenizer.ggml.tokens");
        if (model is null || tokens is null) return null;
        int? Id(string key) => file.GetInteger(key) is { } v && v >= 0 && v < tokens.Length ? (int)v : null;
        return new GgufVocabulary(model, tokens, file.GetFloatArray("tokenizer.ggml.scores"),
            file.GetIntArray("tokenizer.ggml.token_type"), file.GetStringArray("tokenizer.ggml.merges"),
            Id("tokenizer.ggml.bos_token_id"), Id("tokenizer.ggml.eos_token_id"), Id("tokenizer.ggml.unknown_token_id"),
            file.GetBool("tokenizer.ggml.add_space_prefix"), file.GetString("tokenizer.ggml.pre"));
    }

    /// <summary>Adds the keys of <paramref name="v"/> to a file being written.</summary>
    public static void Write(GgufWriter w, GgufVocabulary v)
    {
        w.Add("tokenizer.ggml.model", v.Model);
        w.Add("tokenizer.ggml.tokens", v.Tokens);
        if (v.Scores is not null) w.Add("tokenizer.ggml.scores", v.Scores);
        if (v.TokenTypes is not null) w.Add("tokenizer.ggml.token_type", v.TokenTypes);
        if (v.Merges is not null) w.Add("tokenizer.ggml.merges", v.Merges);
        if (v.BosId is { } b) w.Add("tokenizer.ggml.bos_token_id", (uint)b);
        if (v.EosId is { } e) w.Add("tokenizer.ggml.eos_token_id", (uint)e);
        if (v.UnkId is { } u) w.Add("tokenizer.ggml.unknown_token_id", (uint)u);
        if (v.AddSpacePrefix is { } a) w.Add("tokenizer.ggml.add_space_prefix", a);
        if (v.Pre is not null) w.Add("tokenizer.ggml.pre", v.Pre);
    }
}
