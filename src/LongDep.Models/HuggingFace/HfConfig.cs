using System.Text.Json;

namespace LongDep.Models.HuggingFace;

/// <summary>
/// Reads and writes a Hugging Face <c>config.json</c> for the decoder architectures we run
/// (<c>LlamaForCausalLM</c> → "llama", <c>Qwen2ForCausalLM</c> → "qwen2"). Defaults are those of transformers'
/// LlamaConfig / Qwen2Config. RoPE in Hugging Face checkpoints always rotates halves.
/// </summary>
public static class HfConfig
{
    /// <summary>The file name inside a checkpoint folder.</summary>
    public const string FileName = "config.json";

    private const long MaxConfigBytes = 16L << 20;

    private static readonly (string HfClass, string ModelType, string Arch)[] Known =
    [
        ("LlamaForCausalLM", "llama", "llama"),
        ("Qwen2ForCausalLM", "qwen2", "qwen2"),
    ];

    private static string SupportedText => string.Join(", ", Known.Select(k => $"{k.HfClass} ({k.ModelType})"));

    /// <summary>Reads <c>config.json</c> from <paramref name="folder"/> and returns the validated config.</summary>
    /// <exception cref="ModelFormatException">The file is missing, malformed, or describes an unsupported model.</exception>
    public static ModelConfig Load(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        string path = Path.Combine(folder, FileName);
        if (!Directory.Exists(folder))
            throw new ModelFormatException(folder, "folder not found (expected a Hugging Face checkpoint folder with config.json)");
        if (!File.Exists(path))
            throw new ModelFormatException(folder, $"no {FileName} in the folder; a Hugging Face checkpoint needs one");
        return Parse(SafetensorsFormat.ReadSmallFile(path, MaxConfigBytes, FileName), path);
    }

    /// <summary>Parses the UTF-8 JSON of a config.json; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(ReadOnlyMemory<byte> utf8Json, string source)
    {
        using var doc = SafetensorsFormat.ParseJson(utf8Json, source, FileName);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(source, $"{FileName} must be a JSON object, found {root.ValueKind}");
        var r = new Reader(root, source);

        string arch = ReadArchitecture(r);
        int layers = r.Int("num_hidden_layers");
        int dim = r.Int("hidden_size");
        int ffDim = r.Int("intermediate_size");
        int heads = r.Int("num_attention_heads");
        int kvHeads = r.OptionalInt("num_key_value_heads") ?? heads;
        int? headDim = r.OptionalInt("head_dim");
        if (headDim is null)
        {
            if (heads <= 0 || dim % heads != 0)
                throw new ModelFormatException(source, $"hidden_size {dim} is not a multiple of num_attention_heads {heads} and head_dim is not given");
            headDim = dim / heads;
        }
        int vocab = r.Int("vocab_size");
        int context = r.OptionalInt("max_position_embeddings") ?? (arch == "qwen2" ? 32768 : 2048);
        if (context <= 0)
            throw new ModelFormatException(source, $"max_position_embeddings {context} must be positive");
        float eps = (float)(r.OptionalDouble("rms_norm_eps") ?? 1e-6);
        float theta = (float)ReadRopeTheta(r);
        bool tied = r.OptionalBool("tie_word_embeddings") ?? false;

        string? act = r.OptionalString("hidden_act");
        if (act is not null && act != "silu")
            throw new ModelFormatException(source, $"hidden_act '{act}' is not supported (supported: silu, the SwiGLU of Llama/Qwen2)");

        bool qkvBias;
        if (arch == "qwen2")
        {
            qkvBias = true;
            if (r.OptionalBool("use_sliding_window") == true)
                throw new ModelFormatException(source, "use_sliding_window=true is not supported (only full causal attention)");
        }
        else
        {
            // transformers' attention_bias gives o_proj a bias too, which ModelWeights does not hold.
            if (r.OptionalBool("attention_bias") == true)
                throw new ModelFormatException(source,
                    "attention_bias=true is not supported for llama (it adds biases to q, k, v and o_proj; only Q/K/V biases as in qwen2 are supported)");
            if (r.OptionalBool("mlp_bias") == true)
                throw new ModelFormatException(source, "mlp_bias=true is not supported (feed-forward layers without bias only)");
            qkvBias = false;
        }

        var cfg = new ModelConfig
        {
            Architecture = arch,
            Layers = layers,
            Dim = dim,
            FfDim = ffDim,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim.Value,
            VocabSize = vocab,
            ContextLength = context,
            RmsEps = eps,
            RopeTheta = theta,
            Rope = RopeStyle.Halves,
            QkvBias = qkvBias,
            TiedEmbedding = tied,
        };
        cfg.Validate(source);
        return cfg;
    }

    private static string ReadArchitecture(Reader r)
    {
        if (r.Has("architectures") && r.Get("architectures").ValueKind != JsonValueKind.Null)
        {
            var list = r.Get("architectures");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0 || list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new ModelFormatException(r.Source, $"\"architectures\" must be a non-empty array of class names (supported: {SupportedText})");
            var names = list.EnumerateArray().Select(e => e.GetString()!).ToList();
            foreach (var k in Known)
                if (names.Contains(k.HfClass)) return k.Arch;
            throw new ModelFormatException(r.Source,
                $"unsupported architecture {string.Join(", ", names)} (supported: {SupportedText})");
        }
        string? modelType = r.OptionalString("model_type");
        foreach (var k in Known)
            if (modelType == k.ModelType) return k.Arch;
        throw new ModelFormatException(r.Source,
            modelType is null
                ? $"neither \"architectures\" nor \"model_type\" is given (supported: {SupportedText})"
                : $"unsupported model_type '{modelType}' (supported: {SupportedText})");
    }

    /// <summary>
    /// rope_theta (default 10000), from the top level or from transformers v5's rope_parameters. Any RoPE scaling
    /// other than none / "default" changes the frequencies and is refused.
    /// </summary>
    private static double ReadRopeTheta(Reader r)
    {
        double theta = r.OptionalDouble("rope_theta") ?? 10000.0;
        foreach (string key in (ReadOnlySpan<string>)["rope_scaling", "rope_parameters"])
        {
            if (!r.Has(key)) continue;
            var s = r.Get(key);
            if (s.ValueKind == JsonValueKind.Null) continue;
            if (s.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(r.Source, $"\"{key}\" must be null or an object, found {s.ValueKind}");
            var sub = new Reader(s, r.Source, key + ".");
            string? type = sub.OptionalString("rope_type") ?? sub.OptionalString("type");
            if (type is not null && type != "default")
                throw new ModelFormatException(r.Source,
                    $"{key} type '{type}' is not supported (supported: rope_scaling null, i.e. plain RoPE; use --rope-theta to change the base)");
            if (type is null && key == "rope_scaling")
                throw new ModelFormatException(r.Source, "rope_scaling has no type; only rope_scaling null (plain RoPE) is supported");
            if (sub.OptionalDouble("rope_theta") is double t) theta = t;
        }
        return theta;
    }

    /// <summary>
    /// Writes a config.json that transformers accepts for <paramref name="cfg"/>. The config must use
    /// <see cref="RopeStyle.Halves"/> (what Hugging Face checkpoints mean); a llama config cannot carry Q/K/V biases.
    /// </summary>
    public static void Write(string folder, ModelConfig cfg, TensorType dtype = TensorType.F16, int? bosTokenId = null, int? eosTokenId = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(cfg);
        cfg.Validate(folder);
        if (cfg.Rope != RopeStyle.Halves)
            throw new ArgumentException("Hugging Face checkpoints rotate halves: pass the config with Rope = Halves and Q/K rows in that order (Architectures.TensorsFor permutes them)");
        var known = Known.First(k => k.Arch == cfg.Architecture);
        if (cfg.Architecture == "llama" && cfg.QkvBias)
            throw new ArgumentException("a Hugging Face llama config cannot express Q/K/V biases without an o_proj bias");
        string torchDtype = dtype switch
        {
            TensorType.F32 => "float32",
            TensorType.F16 => "float16",
            TensorType.BF16 => "bfloat16",
            _ => throw new ArgumentException($"torch_dtype must be F32, F16 or BF16, not {dtype}"),
        };

        Directory.CreateDirectory(folder);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue(known.HfClass);
            w.WriteEndArray();
            w.WriteString("model_type", known.ModelType);
            w.WriteNumber("num_hidden_layers", cfg.Layers);
            w.WriteNumber("hidden_size", cfg.Dim);
            w.WriteNumber("intermediate_size", cfg.FfDim);
            w.WriteNumber("num_attention_heads", cfg.Heads);
            w.WriteNumber("num_key_value_heads", cfg.KvHeads);
            w.WriteNumber("head_dim", cfg.HeadDim);
            w.WriteNumber("vocab_size", cfg.VocabSize);
            w.WriteNumber("max_position_embeddings", cfg.ContextLength);
            w.WriteNumber("rms_norm_eps", cfg.RmsEps);
            w.WriteNumber("rope_theta", cfg.RopeTheta);
            w.WriteNull("rope_scaling");
            w.WriteBoolean("tie_word_embeddings", cfg.TiedEmbedding);
            w.WriteString("hidden_act", "silu");
            w.WriteNumber("initializer_range", 0.02);
            if (cfg.Architecture == "llama")
            {
                w.WriteBoolean("attention_bias", false);
                w.WriteNumber("attention_dropout", 0.0);
                w.WriteBoolean("mlp_bias", false);
                w.WriteNumber("pretraining_tp", 1);
            }
            else
            {
                w.WriteNumber("attention_dropout", 0.0);
                w.WriteBoolean("use_sliding_window", false);
                w.WriteNumber("sliding_window", cfg.ContextLength);
                w.WriteNumber("max_window_layers", cfg.Layers);
            }
            if (bosTokenId is int bos) w.WriteNumber("bos_token_id", bos);
            if (eosTokenId is int eos) w.WriteNumber("eos_token_id", eos);
            w.WriteString("torch_dtype", torchDtype);
            w.WriteBoolean("use_cache", true);
            w.WriteEndObject();
        }
        File.WriteAllBytes(Path.Combine(folder, FileName), ms.ToArray());
    }

    /// <summary>Typed access to config fields, each error naming the field and what was expected.</summary>
    private readonly struct Reader(JsonElement obj, string source, string prefix = "")
    {
        public string Source => source;

        public bool Has(string name) => obj.TryGetProperty(name, out _);

        public JsonElement Get(string name) => obj.GetProperty(name);

        /// <summary>The field, or null when absent or JSON null.</summary>
        private JsonElement? Optional(string name) =>
            obj.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

        public int Int(string name) =>
            OptionalInt(name) ?? throw new ModelFormatException(source, $"missing \"{prefix}{name}\" (an integer)");

        public int? OptionalInt(string name)
        {
            if (Optional(name) is not JsonElement e) return null;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int v))
                throw new ModelFormatException(source, $"\"{prefix}{name}\" is {e.GetRawText()}, expected an integer");
            return v;
        }

        public double? OptionalDouble(string name)
        {
            if (Optional(name) is not JsonElement e) return null;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v))
                throw new ModelFormatException(source, $"\"{prefix}{name}\" is {e.GetRawText()}, expected a number");
            return v;
        }

        public bool? OptionalBool(string name)
        {
            if (Optional(name) is not JsonElement e) return null;
            if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                throw new ModelFormatException(source, $"\"{prefix}{name}\" is {e.GetRawText()}, expected true or false");
            return e.GetBoolean();
        }

        public string? OptionalString(string name)
        {
            if (Optional(name) is not JsonElement e) return null;
            if (e.ValueKind != JsonValueKind.String)
                throw new ModelFormatException(source, $"\"{prefix}{name}\" is {e.GetRawText()}, expected a string");
            return e.GetString();
        }
    }
}
