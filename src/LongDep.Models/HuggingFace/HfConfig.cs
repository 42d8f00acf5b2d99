using System.Text.Json;

namespace LongDep.Models.HuggingFace;

/// <summary>
/// Reads and writes a Hugging Face <c>config.json</c> for the decoder architectures we run (llama, mistral, qwen2,
/// qwen3, gemma2, gemma3 (text), phi3, opt), turning each family's fields into the block description of
/// <see cref="ModelConfig"/>. Defaults are those of the transformers config class of each family. RoPE in Hugging Face
/// checkpoints always rotates halves.
/// </summary>
public static class HfConfig
{
    /// <summary>The file name inside a checkpoint folder.</summary>
    public const string FileName = "config.json";

    private const long MaxConfigBytes = 16L << 20;

    private static readonly (string HfClass, string ModelType, string Arch)[] Known =
    [
        ("LlamaForCausalLM", "llama", "llama"),
        ("MistralForCausalLM", "mistral", "mistral"),
        ("Qwen2ForCausalLM", "qwen2", "qwen2"),
        ("Qwen3ForCausalLM", "qwen3", "qwen3"),
        ("Gemma2ForCausalLM", "gemma2", "gemma2"),
        ("Gemma3ForCausalLM", "gemma3_text", "gemma3"),
        ("Phi3ForCausalLM", "phi3", "phi3"),
        ("OPTForCausalLM", "opt", "opt"),
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
        var cfg = arch == "opt" ? ParseOpt(r) : ParseRopeFamily(r, arch);
        cfg.Validate(source);
        return cfg;
    }

    private static ModelConfig ParseRopeFamily(Reader r, string arch)
    {
        string source = r.Source;
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
        bool gemma = arch is "gemma2" or "gemma3";
        int context = r.OptionalInt("max_position_embeddings") ?? arch switch
        {
            "qwen2" => 32768, "qwen3" => 32768, "mistral" => 131072, "gemma2" => 8192, "gemma3" => 131072, "phi3" => 4096, _ => 2048,
        };
        if (context <= 0)
            throw new ModelFormatException(source, $"max_position_embeddings {context} must be positive");
        float eps = (float)(r.OptionalDouble("rms_norm_eps") ?? (arch == "phi3" ? 1e-5 : 1e-6));
        bool tied = r.OptionalBool("tie_word_embeddings") ?? gemma;
        if (r.OptionalDouble("partial_rotary_factor") is double prf && prf != 1.0)
            throw new ModelFormatException(source, $"partial_rotary_factor {prf} rotates part of each head; only full rotary embeddings are supported");

        string act = gemma
            ? r.OptionalString("hidden_activation") ?? r.OptionalString("hidden_act") ?? "gelu_pytorch_tanh"
            : r.OptionalString("hidden_act") ?? "silu";
        string wantAct = gemma ? "gelu_pytorch_tanh" : "silu";
        if (act != wantAct && !(gemma && act == "gelu_tanh"))
            throw new ModelFormatException(source, $"hidden activation '{act}' is not supported for {arch} (supported: {wantAct})");

        bool qkvBias = arch == "qwen2";
        bool outBias = false;
        if (r.OptionalBool("attention_bias") == true)
        {
            if (arch is not ("llama" or "mistral" or "qwen3"))
                throw new ModelFormatException(source, $"attention_bias=true is not supported for {arch}");
            if (arch != "llama")
                throw new ModelFormatException(source, $"attention_bias=true is not supported for {arch} (biases on q, k, v and o_proj are read for llama only)");
            qkvBias = outBias = true;
        }
        if (r.OptionalBool("mlp_bias") == true)
            throw new ModelFormatException(source, "mlp_bias=true is not supported (feed-forward layers without bias only)");

        var (window, sliding) = ReadSlidingWindow(r, arch, layers);
        var (theta, scaling, localTheta) = ReadRope(r, arch, context, headDim.Value);

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
            NormEps = eps,
            RopeTheta = (float)theta,
            Rope = RopeStyle.Halves,
            QkvBias = qkvBias,
            OutputProjectionBias = outBias,
            TiedEmbedding = tied,
            QkNorm = arch is "qwen3" or "gemma3",
            RopeScaling = scaling,
            SlidingWindow = window,
            SlidingLayers = sliding,
        };
        if (gemma)
        {
            double scalar = r.OptionalDouble("query_pre_attn_scalar") ?? headDim.Value;
            if (!(scalar > 0)) throw new ModelFormatException(source, $"query_pre_attn_scalar {scalar} must be positive");
            cfg = cfg with
            {
                NormPlacement = NormPlacement.Sandwich,
                FeedForward = FeedForwardKind.GeGluTanh,
                EmbedScale = MathF.Sqrt(dim),
                AttentionScale = (float)(1.0 / Math.Sqrt(scalar)),
                AttentionSoftCap = Cap(r, "attn_logit_softcapping", arch == "gemma2" ? 50.0 : null),
                FinalSoftCap = Cap(r, "final_logit_softcapping", arch == "gemma2" ? 30.0 : null),
                LocalRopeTheta = arch == "gemma3" ? (float)(localTheta ?? 10000.0) : null,
            };
        }
        return cfg;
    }

    private static float? Cap(Reader r, string name, double? fallback)
    {
        double? v = r.Has(name) ? r.OptionalDouble(name) : fallback;
        if (v is null) return null;
        if (!(v > 0)) throw new ModelFormatException(r.Source, $"\"{name}\" is {v}; a soft-cap must be positive (or null)");
        return (float)v.Value;
    }

    /// <summary>The window and which layers use it, from layer_types or each family's rule.</summary>
    private static (int? Window, IReadOnlyList<bool>? Layers) ReadSlidingWindow(Reader r, string arch, int layers)
    {
        // An absent key takes the config class's default (4096 for the families that have one); null means none.
        int? window = r.Has("sliding_window") ? r.OptionalInt("sliding_window")
            : arch is "mistral" or "qwen2" or "qwen3" or "gemma2" or "gemma3" ? 4096 : null;
        if (window is <= 0) throw new ModelFormatException(r.Source, $"sliding_window {window} must be positive (or null)");
        bool[]? marks = null;
        if (r.Has("layer_types") && r.Get("layer_types").ValueKind != JsonValueKind.Null)
        {
            var list = r.Get("layer_types");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() != layers)
                throw new ModelFormatException(r.Source, $"\"layer_types\" must list one type per layer ({layers})");
            marks = list.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                var other => throw new ModelFormatException(r.Source, $"layer type '{other}' is not supported (supported: full_attention, sliding_attention)"),
            } : throw new ModelFormatException(r.Source, "\"layer_types\" must hold strings")).ToArray();
        }
        else
        {
            switch (arch)
            {
                case "qwen2" or "qwen3":
                    if (r.OptionalBool("use_sliding_window") != true) return (null, null);
                    int from = r.OptionalInt("max_window_layers") ?? 28;
                    marks = Enumerable.Range(0, layers).Select(i => i >= from).ToArray();
                    break;
                case "gemma2":
                    marks = Enumerable.Range(0, layers).Select(i => i % 2 == 0).ToArray();
                    break;
                case "gemma3":
                    int pattern = r.OptionalInt("sliding_window_pattern") ?? 6;
                    if (pattern <= 0) throw new ModelFormatException(r.Source, $"sliding_window_pattern {pattern} must be positive");
                    marks = Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0).ToArray();
                    break;
                case "llama":
                    return (null, null); // LlamaConfig has no sliding window
            }
        }
        if (window is null || (marks is not null && !marks.Any(m => m))) return (null, null);
        return (window, marks);
    }

    private static string ReadArchitecture(Reader r)
    {
        if (r.Has("text_config") || r.Has("vision_config"))
            throw new ModelFormatException(r.Source,
                "this is a multimodal checkpoint (text_config/vision_config); use its text-only form (e.g. Gemma3ForCausalLM) or a GGUF of the language model");
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
    /// rope_theta (default 10000) and the scaling, from rope_scaling or transformers v5's rope_parameters (which may
    /// hold one entry per layer type: full_attention, sliding_attention). Returns the sliding layers' own base when given.
    /// </summary>
    private static (double Theta, RopeScaling Scaling, double? LocalTheta) ReadRope(Reader r, string arch, int context, int headDim)
    {
        double theta = r.OptionalDouble("rope_theta") ?? (arch == "gemma3" ? 1000000.0 : 10000.0);
        double? localTheta = arch == "gemma3" ? r.OptionalDouble("rope_local_base_freq") : null;
        var scaling = RopeScaling.None;
        foreach (string key in (ReadOnlySpan<string>)["rope_scaling", "rope_parameters"])
        {
            if (!r.Has(key)) continue;
            var s = r.Get(key);
            if (s.ValueKind == JsonValueKind.Null) continue;
            if (s.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(r.Source, $"\"{key}\" must be null or an object, found {s.ValueKind}");
            if (s.TryGetProperty("full_attention", out var full))
            {
                if (s.TryGetProperty("sliding_attention", out var slide) && slide.ValueKind == JsonValueKind.Object
                    && new Reader(slide, r.Source, key + ".sliding_attention.").OptionalDouble("rope_theta") is double lt)
                    localTheta = lt;
                s = full;
                if (s.ValueKind != JsonValueKind.Object)
                    throw new ModelFormatException(r.Source, $"\"{key}.full_attention\" must be an object");
            }
            var sub = new Reader(s, r.Source, key + ".");
            if (sub.OptionalDouble("rope_theta") is double t) theta = t;
            var parsed = ParseScaling(r, sub, key, context, headDim);
            if (parsed.Type != RopeScalingType.None) scaling = parsed;
        }
        return (theta, scaling, localTheta);
    }

    private static RopeScaling ParseScaling(Reader top, Reader sub, string key, int context, int headDim)
    {
        string? type = sub.OptionalString("rope_type") ?? sub.OptionalString("type");
        if (type is null && key == "rope_scaling")
            throw new ModelFormatException(top.Source, "rope_scaling has no type; give rope_type (linear, dynamic, llama3, yarn, longrope) or null");
        int original = sub.OptionalInt("original_max_position_embeddings") ?? top.OptionalInt("original_max_position_embeddings") ?? context;
        double Factor(double min)
        {
            double f = sub.OptionalDouble("factor") ?? throw new ModelFormatException(top.Source, $"{key} type '{type}' needs \"factor\"");
            if (!(f >= min)) throw new ModelFormatException(top.Source, $"{key}.factor {f} must be at least {min}");
            return f;
        }
        float[] Factors(string name)
        {
            if (!sub.Has(name) || sub.Get(name).ValueKind != JsonValueKind.Array)
                throw new ModelFormatException(top.Source, $"{key} type '{type}' needs \"{name}\" (an array of {headDim / 2} numbers)");
            var a = sub.Get(name).EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetSingle()
                : throw new ModelFormatException(top.Source, $"{key}.{name} must hold numbers")).ToArray();
            if (a.Length != headDim / 2)
                throw new ModelFormatException(top.Source, $"{key}.{name} has {a.Length} values, expected {headDim / 2} (head dimension / 2)");
            return a;
        }
        switch (type)
        {
            case null or "default":
                return RopeScaling.None;
            case "linear":
                return new RopeScaling { Type = RopeScalingType.Linear, Factor = Factor(double.Epsilon) };
            case "dynamic":
                return new RopeScaling { Type = RopeScalingType.Dynamic, Factor = Factor(1), OriginalContext = original };
            case "llama3":
                return new RopeScaling
                {
                    Type = RopeScalingType.Llama3,
                    Factor = Factor(double.Epsilon),
                    OriginalContext = sub.OptionalInt("original_max_position_embeddings")
                        ?? throw new ModelFormatException(top.Source, $"{key} type 'llama3' needs \"original_max_position_embeddings\""),
                    LowFreqFactor = sub.OptionalDouble("low_freq_factor") ?? throw new ModelFormatException(top.Source, $"{key} type 'llama3' needs \"low_freq_factor\""),
                    HighFreqFactor = sub.OptionalDouble("high_freq_factor") ?? throw new ModelFormatException(top.Source, $"{key} type 'llama3' needs \"high_freq_factor\""),
                };
            case "yarn":
            {
                double factor = Factor(1);
                double? attention = sub.OptionalDouble("attention_factor");
                if (attention is null && sub.OptionalDouble("mscale") is double ms && sub.OptionalDouble("mscale_all_dim") is double mad && ms != 0 && mad != 0)
                    attention = YarnMscale(factor, ms) / YarnMscale(factor, mad);
                if (sub.OptionalBool("truncate") == false)
                    throw new ModelFormatException(top.Source, $"{key}.truncate = false is not supported");
                return new RopeScaling
                {
                    Type = RopeScalingType.Yarn,
                    Factor = factor,
                    OriginalContext = original,
                    BetaFast = sub.OptionalDouble("beta_fast") ?? 32.0,
                    BetaSlow = sub.OptionalDouble("beta_slow") ?? 1.0,
                    AttentionFactor = attention,
                };
            }
            case "longrope" or "su":
                return new RopeScaling
                {
                    Type = RopeScalingType.LongRope,
                    OriginalContext = original,
                    AttentionFactor = sub.OptionalDouble("attention_factor"),
                    ShortFactors = Factors("short_factor"),
                    LongFactors = Factors("long_factor"),
                };
            default:
                throw new ModelFormatException(top.Source,
                    $"{key} type '{type}' is not supported (supported: default, linear, dynamic, llama3, yarn, longrope)");
        }
    }

    private static double YarnMscale(double scale, double mscale) => scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;

    /// <summary>OPT (ProLong's reference model family): learned positions, LayerNorm with bias, ReLU MLP, biases everywhere.</summary>
    private static ModelConfig ParseOpt(Reader r)
    {
        string source = r.Source;
        int layers = r.Int("num_hidden_layers");
        int dim = r.Int("hidden_size");
        int heads = r.Int("num_attention_heads");
        if (heads <= 0 || dim % heads != 0)
            throw new ModelFormatException(source, $"hidden_size {dim} is not a multiple of num_attention_heads {heads}");
        int ff = r.OptionalInt("ffn_dim") ?? 3072;
        int vocab = r.Int("vocab_size");
        int maxPos = r.OptionalInt("max_position_embeddings") ?? 2048;
        if (maxPos <= 0) throw new ModelFormatException(source, $"max_position_embeddings {maxPos} must be positive");
        bool pre = r.OptionalBool("do_layer_norm_before") ?? true;
        bool removeFinal = r.OptionalBool("_remove_final_layer_norm") ?? false;
        int embed = r.OptionalInt("word_embed_proj_dim") ?? dim;
        string act = r.OptionalString("activation_function") ?? "relu";
        if (act != "relu")
            throw new ModelFormatException(source, $"activation_function '{act}' is not supported for opt (supported: relu)");
        if (r.OptionalBool("enable_bias") == false)
            throw new ModelFormatException(source, "enable_bias=false is not supported (OPT layers with biases only)");
        if (r.OptionalBool("layer_norm_elementwise_affine") == false)
            throw new ModelFormatException(source, "layer_norm_elementwise_affine=false is not supported (LayerNorm with weight and bias only)");
        return new ModelConfig
        {
            Architecture = "opt",
            Layers = layers,
            Dim = dim,
            FfDim = ff,
            Heads = heads,
            KvHeads = heads,
            HeadDim = dim / heads,
            VocabSize = vocab,
            ContextLength = maxPos,
            NormEps = 1e-5f,   // torch.nn.LayerNorm's default, which OPT's layers use
            RopeTheta = 10000f,
            Rope = RopeStyle.Halves,
            QkvBias = true,
            OutputProjectionBias = true,
            FeedForwardBias = true,
            TiedEmbedding = r.OptionalBool("tie_word_embeddings") ?? true,
            Norm = NormKind.LayerNorm,
            NormPlacement = pre ? NormPlacement.Pre : NormPlacement.Post,
            FinalNorm = pre && !removeFinal,
            Positions = PositionKind.Learned,
            PositionOffset = 2,
            PositionRows = maxPos + 2,
            ScaleQueries = true,
            FeedForward = FeedForwardKind.Relu,
            EmbedDim = embed == dim ? null : embed,
        };
    }

    /// <summary>
    /// Writes a config.json that transformers accepts for <paramref name="cfg"/>. The config must use
    /// <see cref="RopeStyle.Halves"/> (what Hugging Face checkpoints mean).
    /// </summary>
    public static void Write(string folder, ModelConfig cfg, TensorType dtype = TensorType.F16, int? bosTokenId = null, int? eosTokenId = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(cfg);
        cfg.Validate(folder);
        if (cfg.Rope != RopeStyle.Halves)
            throw new ArgumentException("Hugging Face checkpoints rotate halves: pass the config with Rope = Halves and Q/K rows in that order (Architectures.TensorsFor permutes them)");
        var known = Known.FirstOrDefault(k => k.Arch == cfg.Architecture);
        if (known.Arch is null) throw new ArgumentException($"no Hugging Face config for architecture '{cfg.Architecture}'");
        if (cfg.Architecture == "llama" && cfg.QkvBias != cfg.OutputProjectionBias)
            throw new ArgumentException("a Hugging Face llama config has biases on q, k, v and o_proj together (attention_bias) or on none");
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
            w.WriteNumber("num_attention_heads", cfg.Heads);
            w.WriteNumber("vocab_size", cfg.VocabSize);
            w.WriteBoolean("tie_word_embeddings", cfg.TiedEmbedding);
            if (cfg.Architecture == "opt") WriteOpt(w, cfg);
            else WriteRopeFamily(w, cfg);
            if (bosTokenId is int bos) w.WriteNumber("bos_token_id", bos);
            if (eosTokenId is int eos) w.WriteNumber("eos_token_id", eos);
            w.WriteString("torch_dtype", torchDtype);
            w.WriteBoolean("use_cache", true);
            w.WriteEndObject();
        }
        File.WriteAllBytes(Path.Combine(folder, FileName), ms.ToArray());
    }

    private static void WriteOpt(Utf8JsonWriter w, ModelConfig cfg)
    {
        if (cfg.Positions != PositionKind.Learned || cfg.PositionOffset != 2 || cfg.Norm != NormKind.LayerNorm)
            throw new ArgumentException("an OPT config needs learned positions with offset 2 and LayerNorm");
        w.WriteNumber("ffn_dim", cfg.FfDim);
        w.WriteNumber("max_position_embeddings", cfg.PositionRows - 2);
        w.WriteBoolean("do_layer_norm_before", cfg.NormPlacement == NormPlacement.Pre);
        if (cfg.NormPlacement == NormPlacement.Pre && !cfg.FinalNorm) w.WriteBoolean("_remove_final_layer_norm", true);
        w.WriteNumber("word_embed_proj_dim", cfg.EmbeddingWidth);
        w.WriteString("activation_function", "relu");
        w.WriteBoolean("enable_bias", true);
        w.WriteBoolean("layer_norm_elementwise_affine", true);
        w.WriteNumber("dropout", 0.0);
        w.WriteNumber("attention_dropout", 0.0);
        w.WriteNumber("activation_dropout", 0.0);
        w.WriteNumber("layerdrop", 0.0);
        w.WriteNumber("init_std", 0.02);
        w.WriteNumber("pad_token_id", 1);
    }

    private static void WriteRopeFamily(Utf8JsonWriter w, ModelConfig cfg)
    {
        string arch = cfg.Architecture;
        bool gemma = arch is "gemma2" or "gemma3";
        w.WriteNumber("intermediate_size", cfg.FfDim);
        w.WriteNumber("num_key_value_heads", cfg.KvHeads);
        w.WriteNumber("head_dim", cfg.HeadDim);
        w.WriteNumber("max_position_embeddings", cfg.ContextLength);
        w.WriteNumber("rms_norm_eps", cfg.NormEps);
        w.WriteNumber("rope_theta", cfg.RopeTheta);
        WriteScaling(w, cfg.RopeScaling);
        w.WriteString(gemma ? "hidden_activation" : "hidden_act", gemma ? "gelu_pytorch_tanh" : "silu");
        w.WriteNumber("initializer_range", 0.02);
        w.WriteNumber("attention_dropout", 0.0);
        if (arch is "llama" or "qwen3") w.WriteBoolean("attention_bias", cfg.QkvBias);
        if (arch == "llama") { w.WriteBoolean("mlp_bias", false); w.WriteNumber("pretraining_tp", 1); }
        if (cfg.SlidingWindow is int window)
        {
            w.WriteNumber("sliding_window", window);
            w.WriteStartArray("layer_types");
            for (int i = 0; i < cfg.Layers; i++) w.WriteStringValue(cfg.WindowOf(i) is null ? "full_attention" : "sliding_attention");
            w.WriteEndArray();
            if (arch is "qwen2" or "qwen3")
            {
                w.WriteBoolean("use_sliding_window", true);
                int first = Enumerable.Range(0, cfg.Layers).FirstOrDefault(i => cfg.WindowOf(i) is not null);
                w.WriteNumber("max_window_layers", first);
            }
            if (arch == "gemma3") w.WriteNumber("sliding_window_pattern", 6);
        }
        else if (arch is "mistral" or "phi3" or "gemma2" or "gemma3")
        {
            w.WriteNull("sliding_window");
        }
        else if (arch is "qwen2" or "qwen3")
        {
            w.WriteBoolean("use_sliding_window", false);
        }
        if (gemma)
        {
            w.WriteNumber("query_pre_attn_scalar", 1.0 / ((double)cfg.ScoreScale * cfg.ScoreScale));
            if (cfg.AttentionSoftCap is float ac) w.WriteNumber("attn_logit_softcapping", ac); else w.WriteNull("attn_logit_softcapping");
            if (cfg.FinalSoftCap is float fc) w.WriteNumber("final_logit_softcapping", fc); else w.WriteNull("final_logit_softcapping");
            if (arch == "gemma3") w.WriteNumber("rope_local_base_freq", cfg.LocalRopeTheta ?? 10000f);
        }
        if (arch == "phi3")
        {
            w.WriteNumber("original_max_position_embeddings", cfg.RopeScaling.OriginalContext > 0 ? cfg.RopeScaling.OriginalContext : cfg.ContextLength);
            w.WriteNumber("partial_rotary_factor", 1.0);
        }
    }

    private static void WriteScaling(Utf8JsonWriter w, RopeScaling s)
    {
        if (s.Type == RopeScalingType.None)
        {
            w.WriteNull("rope_scaling");
            return;
        }
        w.WriteStartObject("rope_scaling");
        switch (s.Type)
        {
            case RopeScalingType.Linear:
                w.WriteString("rope_type", "linear"); w.WriteNumber("factor", s.Factor);
                break;
            case RopeScalingType.Dynamic:
                w.WriteString("rope_type", "dynamic"); w.WriteNumber("factor", s.Factor);
                w.WriteNumber("original_max_position_embeddings", s.OriginalContext);
                break;
            case RopeScalingType.Llama3:
                if (s.FrequencyFactors is not null) throw new ArgumentException("llama3 scaling given as per-frequency factors has no config.json form");
                w.WriteString("rope_type", "llama3"); w.WriteNumber("factor", s.Factor);
                w.WriteNumber("low_freq_factor", s.LowFreqFactor); w.WriteNumber("high_freq_factor", s.HighFreqFactor);
                w.WriteNumber("original_max_position_embeddings", s.OriginalContext);
                break;
            case RopeScalingType.Yarn:
                w.WriteString("rope_type", "yarn"); w.WriteNumber("factor", s.Factor);
                w.WriteNumber("original_max_position_embeddings", s.OriginalContext);
                w.WriteNumber("beta_fast", s.BetaFast); w.WriteNumber("beta_slow", s.BetaSlow);
                if (s.AttentionFactor is double af) w.WriteNumber("attention_factor", af);
                break;
            case RopeScalingType.LongRope:
                w.WriteString("rope_type", "longrope");
                if (s.AttentionFactor is double lf) w.WriteNumber("attention_factor", lf);
                w.WriteStartArray("short_factor"); foreach (var f in s.ShortFactors!) w.WriteNumberValue(f); w.WriteEndArray();
                w.WriteStartArray("long_factor"); foreach (var f in s.LongFactors!) w.WriteNumberValue(f); w.WriteEndArray();
                break;
        }
        w.WriteEndObject();
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
