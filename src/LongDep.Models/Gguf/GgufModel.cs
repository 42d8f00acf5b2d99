using LongDep.Models.Tokenization;

namespace LongDep.Models.Gguf;

/// <summary>
/// A GGUF file as a Llama-family model: the config from the file's metadata (<c>general.architecture</c> and the
/// <c>{arch}.*</c> keys), the weights through the architecture table, and a writer for tests and <c>make-model</c>.
/// </summary>
public static class GgufModel
{
    /// <summary>The model config the metadata of <paramref name="file"/> describes.</summary>
    /// <exception cref="ModelFormatException">A required key is missing or a value is out of range.</exception>
    public static ModelConfig ReadConfig(GgufFile file)
    {
        string src = file.SourcePath;
        string arch = file.GetString("general.architecture")
            ?? throw new ModelFormatException(src, "the metadata key 'general.architecture' is missing; this is not a model file");
        if (!Architectures.Supported.Contains(arch))
            throw new ModelFormatException(src, $"unsupported architecture '{arch}' (supported: {string.Join(", ", Architectures.Supported)})");
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

        int dim = Int("embedding_length");
        int heads = Int("attention.head_count");
        if (heads <= 0) throw new ModelFormatException(src, $"'{arch}.attention.head_count' is {heads}; expected a positive count");
        int headDim = Int("attention.key_length", Int("rope.dimension_count", dim / heads));
        int vocab = file.Tensors.TryGetValue(info.TokenEmbedding, out var emb) && emb.Shape.Length == 2
            ? (int)Math.Min(emb.Shape[0], int.MaxValue)
            : file.GetStringArray("tokenizer.ggml.tokens")?.Length
              ?? throw new ModelFormatException(src, $"cannot tell the vocabulary size: no '{info.TokenEmbedding}' tensor and no tokenizer.ggml.tokens");
        double eps = file.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5;
        double theta = file.GetFloat($"{arch}.rope.freq_base") ?? 10000.0;
        RefuseRopeScaling(file, arch);
        var cfg = new ModelConfig
        {
            Architecture = arch,
            Layers = Int("block_count"),
            Dim = dim,
            FfDim = Int("feed_forward_length"),
            Heads = heads,
            KvHeads = Int("attention.head_count_kv", heads),
            HeadDim = headDim,
            VocabSize = vocab,
            ContextLength = Int("context_length", 2048),
            RmsEps = (float)eps,
            RopeTheta = (float)theta,
            Rope = info.Rope,
            QkvBias = info.QkvBias,
            TiedEmbedding = !file.Tensors.ContainsKey(info.Output),
        };
        cfg.Validate(src);
        return cfg;
    }

    /// <summary>
    /// Refuses a file whose metadata asks for scaled RoPE, which is not read yet (reading it as plain RoPE would give
    /// wrong scores without a word). As llama.cpp reads it: <c>{arch}.rope.scaling.type</c> defaults to linear, whose
    /// factor (<c>rope.scaling.factor</c>, else <c>rope.scale_linear</c>) of 0 or 1 means no scaling; <c>none</c> is
    /// plain RoPE; any other type, an attention factor other than 1 (<c>rope.scaling.attn_factor</c>, which llama.cpp
    /// applies whatever the type) and a <c>rope_freqs</c> tensor (Llama 3's per-dimension factors) are scaling.
    /// </summary>
    private static void RefuseRopeScaling(GgufFile file, string arch)
    {
        string type = file.GetString($"{arch}.rope.scaling.type") ?? "linear";
        double factor = file.GetFloat($"{arch}.rope.scaling.factor") ?? file.GetFloat($"{arch}.rope.scale_linear") ?? 0.0;
        string? scaling = type switch
        {
            "none" => null,
            "linear" when factor is 0.0 or 1.0 => null,
            "linear" => $"RoPE scaling 'linear' (factor {factor})",
            _ => $"RoPE scaling '{type}'",
        };
        if (scaling is null && file.GetFloat($"{arch}.rope.scaling.attn_factor") is { } attn && attn != 1.0)
            scaling = $"a RoPE attention factor of {attn} ('{arch}.rope.scaling.attn_factor')";
        if (scaling is null && file.Tensors.ContainsKey("rope_freqs.weight"))
            scaling = "RoPE frequency factors (a 'rope_freqs.weight' tensor, as Llama 3.x's 'llama3' RoPE scaling writes)";
        if (scaling is not null)
            throw new ModelFormatException(file.SourcePath,
                $"the model asks for {scaling}, which this tool does not implement yet; reading it as plain RoPE would give " +
                "wrong scores. Use a model without RoPE scaling");
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
        var w = new GgufWriter();
        w.Add("general.architecture", c.Architecture);
        w.Add("general.name", name ?? $"longdep-{c.Architecture}");
        w.Add($"{c.Architecture}.block_count", (uint)c.Layers);
        w.Add($"{c.Architecture}.context_length", (uint)c.ContextLength);
        w.Add($"{c.Architecture}.embedding_length", (uint)c.Dim);
        w.Add($"{c.Architecture}.feed_forward_length", (uint)c.FfDim);
        w.Add($"{c.Architecture}.attention.head_count", (uint)c.Heads);
        w.Add($"{c.Architecture}.attention.head_count_kv", (uint)c.KvHeads);
        w.Add($"{c.Architecture}.attention.key_length", (uint)c.HeadDim);
        w.Add($"{c.Architecture}.attention.value_length", (uint)c.HeadDim);
        w.Add($"{c.Architecture}.rope.dimension_count", (uint)c.HeadDim);
        w.Add($"{c.Architecture}.attention.layer_norm_rms_epsilon", c.RmsEps);
        w.Add($"{c.Architecture}.rope.freq_base", c.RopeTheta);
        if (vocabulary is not null) GgufVocabularyKeys.Write(w, vocabulary);
        foreach (var (tensorName, data, shape) in Architectures.TensorsFor(weights, ModelFormat.Gguf))
            w.AddTensor(tensorName, data, shape, shape.Length == 1 ? TensorType.F32 : Quant.Quantize.FitRow(type, shape[^1]));
        w.Write(path);
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
