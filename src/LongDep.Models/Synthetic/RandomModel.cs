namespace LongDep.Models.Synthetic;

/// <summary>
/// Random Llama-family models of a named shape, for the demo, benchmarks, the self-test and tests. The same
/// (config, seed) always gives the same weights, whatever the thread count. Random weights give meaningless scores;
/// they exercise every code path with realistic sizes.
/// </summary>
public static class RandomModel
{
    /// <summary>
    /// Named shapes: tinyllama (TinyLlama-1.1B), llama2-7b, tiny (2 layers, 64 dims, for demos and tests), one tiny model
    /// of each family (tiny-mistral, tiny-qwen2, tiny-qwen3, tiny-gemma2, tiny-gemma3, tiny-phi3, tiny-llama3: with the
    /// family's block, sliding windows, soft-caps and RoPE scaling), opt-tiny and opt-350m (facebook/opt-350m's shape:
    /// post-norm, 512 → 1024 projections) and opt-125m (pre-norm).
    /// </summary>
    public static ModelConfig Shape(string name, int? vocabSize = null, int contextLength = 32768) => name.ToLowerInvariant() switch
    {
        "tinyllama" => Llama(22, 2048, 5632, 32, 4, vocabSize ?? 32000, contextLength),
        "llama2-7b" => Llama(32, 4096, 11008, 32, 32, vocabSize ?? 32000, contextLength),
        "tiny" => Llama(2, 64, 128, 4, 2, vocabSize ?? 512, contextLength),
        "opt-350m" => Opt(24, 1024, 4096, 16, vocabSize ?? 50272, 2048, preNorm: false, embed: 512),
        "opt-125m" => Opt(12, 768, 3072, 12, vocabSize ?? 50272, 2048, preNorm: true, embed: null),
        "opt-tiny" => Opt(2, 64, 128, 4, vocabSize ?? 512, 2048, preNorm: false, embed: 32),
        var other when other.StartsWith("tiny-", StringComparison.Ordinal) && TinyFamilies.Contains(other[5..]) =>
            Tiny(other[5..], vocabSize ?? 512, contextLength),
        _ => throw new ArgumentException($"unknown model shape '{name}' (known: {string.Join(", ", ShapeNames)})", nameof(name)),
    };

    private static readonly string[] TinyFamilies = ["llama3", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];

    /// <summary>The shape names <see cref="Shape"/> knows.</summary>
    public static IReadOnlyList<string> ShapeNames { get; } =
        ["tinyllama", "llama2-7b", "tiny", .. TinyFamilies.Select(f => "tiny-" + f), "opt-tiny", "opt-125m", "opt-350m"];

    private static ModelConfig Opt(int layers, int dim, int ff, int heads, int vocab, int maxPositions, bool preNorm, int? embed) => new()
    {
        Architecture = "opt",
        Layers = layers,
        Dim = dim,
        FfDim = ff,
        Heads = heads,
        KvHeads = heads,
        HeadDim = dim / heads,
        VocabSize = vocab,
        ContextLength = maxPositions,
        NormEps = 1e-5f,
        RopeTheta = 10000f,
        Rope = RopeStyle.Halves,
        QkvBias = true,
        OutputProjectionBias = true,
        FeedForwardBias = true,
        TiedEmbedding = true,
        Norm = NormKind.LayerNorm,
        NormPlacement = preNorm ? NormPlacement.Pre : NormPlacement.Post,
        FinalNorm = preNorm,
        Positions = PositionKind.Learned,
        PositionOffset = 2,
        PositionRows = maxPositions + 2,
        ScaleQueries = true,
        FeedForward = FeedForwardKind.Relu,
        EmbedDim = embed,
    };

    /// <summary>A 2-layer model of <paramref name="family"/>'s block with the features that set it apart from Llama.</summary>
    private static ModelConfig Tiny(string family, int vocab, int ctx)
    {
        var c = Llama(2, 64, 128, 4, 2, vocab, ctx) with { Rope = RopeStyle.Halves };
        return family switch
        {
            "llama3" => c with
            {
                Rope = RopeStyle.AdjacentPairs,
                RopeTheta = 500000f,
                RopeScaling = new RopeScaling { Type = RopeScalingType.Llama3, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalContext = 64 },
            },
            "mistral" => c with { Architecture = "mistral", SlidingWindow = 48 },
            "qwen2" => c with
            {
                Architecture = "qwen2", QkvBias = true, TiedEmbedding = true, RopeTheta = 1000000f,
                RopeScaling = new RopeScaling { Type = RopeScalingType.Yarn, Factor = 4, OriginalContext = 64 },
            },
            "qwen3" => c with { Architecture = "qwen3", QkNorm = true, HeadDim = 32, NormEps = 1e-6f, RopeTheta = 1000000f },
            "gemma2" => c with
            {
                Architecture = "gemma2", NormPlacement = NormPlacement.Sandwich, FeedForward = FeedForwardKind.GeGluTanh,
                EmbedScale = MathF.Sqrt(64), AttentionSoftCap = 50f, FinalSoftCap = 30f, SlidingWindow = 32,
                SlidingLayers = [true, false], TiedEmbedding = true, NormEps = 1e-6f,
            },
            "gemma3" => c with
            {
                Architecture = "gemma3", Layers = 6, NormPlacement = NormPlacement.Sandwich, FeedForward = FeedForwardKind.GeGluTanh,
                EmbedScale = MathF.Sqrt(64), QkNorm = true, SlidingWindow = 32, SlidingLayers = [true, true, true, true, true, false],
                TiedEmbedding = true, NormEps = 1e-6f, RopeTheta = 1000000f, LocalRopeTheta = 10000f,
                RopeScaling = new RopeScaling { Type = RopeScalingType.Linear, Factor = 8 },
            },
            "phi3" => c with
            {
                Architecture = "phi3", KvHeads = 4, SlidingWindow = 2047, ContextLength = 131072,
                RopeScaling = new RopeScaling
                {
                    Type = RopeScalingType.LongRope, OriginalContext = 4096,
                    ShortFactors = Enumerable.Range(0, 8).Select(i => 1f + 0.05f * i).ToArray(),
                    LongFactors = Enumerable.Range(0, 8).Select(i => 1f + 1.5f * i * i).ToArray(),
                },
            },
            _ => throw new ArgumentException($"no tiny shape for family '{family}'", nameof(family)),
        };
    }

    private static ModelConfig Llama(int layers, int dim, int ff, int heads, int kvHeads, int vocab, int ctx) => new()
    {
        Architecture = "llama",
        Layers = layers,
        Dim = dim,
        FfDim = ff,
        Heads = heads,
        KvHeads = kvHeads,
        HeadDim = dim / heads,
        VocabSize = vocab,
        ContextLength = ctx,
        NormEps = 1e-5f,
        RopeTheta = 10000f,
        Rope = RopeStyle.AdjacentPairs,
        QkvBias = false,
        TiedEmbedding = false,
    };

    /// <summary>A small llama-style config for quick checks (dims divisible as the kernels like, GQA 2:1).</summary>
    public static ModelConfig TinyConfig(RopeStyle rope = RopeStyle.AdjacentPairs, bool qkvBias = false, bool tied = false) => new()
    {
        Architecture = qkvBias ? "qwen2" : "llama",
        Layers = 2,
        Dim = 64,
        FfDim = 96,
        Heads = 4,
        KvHeads = 2,
        HeadDim = 16,
        VocabSize = 97,
        ContextLength = 4096,
        NormEps = 1e-5f,
        RopeTheta = 10000f,
        Rope = rope,
        QkvBias = qkvBias,
        TiedEmbedding = tied,
    };

    /// <summary>TinyLlama-1.1B's shape: 22 layers, 2048 dims, 32 heads, 4 KV heads, 5632 FF, 32000 vocabulary.</summary>
    public static ModelConfig TinyLlamaConfig(int layers = 22) => new()
    {
        Architecture = "llama",
        Layers = layers,
        Dim = 2048,
        FfDim = 5632,
        Heads = 32,
        KvHeads = 4,
        HeadDim = 64,
        VocabSize = 32000,
        ContextLength = 2048,
        NormEps = 1e-5f,
        RopeTheta = 10000f,
        Rope = RopeStyle.AdjacentPairs,
        QkvBias = false,
        TiedEmbedding = false,
    };

    /// <summary>
    /// Weights for <paramref name="config"/>: matrices uniform with standard deviation 1/sqrt(fan-in), norm weights near 1
    /// (biases near 0), embeddings with unit variance, the output head scaled for logits of standard deviation about 2.
    /// </summary>
    public static ModelWeights Create(ModelConfig config, long seed) => Create(config, seed, lazy: false);

    /// <summary>
    /// The same weights as <see cref="Create(ModelConfig, long)"/>; with <paramref name="lazy"/> the matrices are
    /// computed when read (<see cref="WeightMatrix.FromGenerator"/>) instead of held, so that a model larger than memory
    /// (llama2-7b's 27 GB of float32) can be written one tensor at a time.
    /// </summary>
    public static ModelWeights Create(ModelConfig config, long seed, bool lazy)
    {
        config.Validate("random model config");
        var c = config;
        int tensor = 0;
        WeightMatrix Matrix(long rows, long cols, double std)
        {
            int id = tensor++;
            long count = rows * cols;
            return lazy
                ? WeightMatrix.FromGenerator(count, (first, destination) => FillRange(first, destination, seed, id, std, 0.0))
                : Fill(count, seed, id, std, 0.0);
        }
        float[] Norm(int n) => Fill(n, seed, tensor++, 0.1, 1.0);
        float[] Bias(int n) => Fill(n, seed, tensor++, 0.1, 0.0);
        float[]? NormIf(bool wanted, int n) => wanted ? Norm(n) : null;
        float[]? BiasIf(bool wanted, int n) => wanted ? Bias(n) : null;

        // A tied table is also the output head: scale it like one (logits of standard deviation about 2).
        int e = c.EmbeddingWidth;
        double embedStd = c.TiedEmbedding ? 2.0 / Math.Sqrt(e) : 1.0;
        if (c.EmbedScale != 1f) embedStd = Math.Min(embedStd, 1.0 / c.EmbedScale * 4);
        var embedding = Matrix(c.VocabSize, e, embedStd);
        bool sandwich = c.NormPlacement == NormPlacement.Sandwich;
        var layers = new LayerWeights[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            double inv = 1.0 / Math.Sqrt(c.Dim);
            layers[i] = new LayerWeights
            {
                AttnNorm = Norm(c.Dim),
                AttnNormBias = BiasIf(c.NormHasBias, c.Dim),
                Wq = Matrix(c.QDim, c.Dim, inv),
                Wk = Matrix(c.KvDim, c.Dim, inv),
                Wv = Matrix(c.KvDim, c.Dim, inv),
                Wo = Matrix(c.Dim, c.QDim, 1.0 / Math.Sqrt(c.QDim)),
                Bq = BiasIf(c.QkvBias, c.QDim),
                Bk = BiasIf(c.QkvBias, c.KvDim),
                Bv = BiasIf(c.QkvBias, c.KvDim),
                Bo = BiasIf(c.OutputProjectionBias, c.Dim),
                QNorm = NormIf(c.QkNorm, c.HeadDim),
                KNorm = NormIf(c.QkNorm, c.HeadDim),
                PostAttnNorm = NormIf(sandwich, c.Dim),
                FfnNorm = Norm(c.Dim),
                FfnNormBias = BiasIf(c.NormHasBias, c.Dim),
                WGate = c.HasGate ? Matrix(c.FfDim, c.Dim, inv) : null,
                WUp = Matrix(c.FfDim, c.Dim, inv),
                WDown = Matrix(c.Dim, c.FfDim, 1.0 / Math.Sqrt(c.FfDim)),
                BUp = BiasIf(c.FeedForwardBias, c.FfDim),
                BDown = BiasIf(c.FeedForwardBias, c.Dim),
                PostFfnNorm = NormIf(sandwich, c.Dim),
            };
        }
        var outputNorm = NormIf(c.FinalNorm, c.Dim);
        var outputNormBias = BiasIf(c.FinalNorm && c.NormHasBias, c.Dim);
        var output = c.TiedEmbedding ? embedding : Matrix(c.VocabSize, e, 2.0 / Math.Sqrt(e));
        var weights = new ModelWeights
        {
            Config = c,
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = outputNorm,
            OutputNormBias = outputNormBias,
            Output = output,
            PositionEmbedding = c.Positions == PositionKind.Learned ? Fill((long)c.PositionRows * c.Dim, seed, tensor++, 0.5, 0.0) : null,
            ProjectIn = c.HasProjections ? Matrix(c.Dim, e, 1.0 / Math.Sqrt(e)) : null,
            ProjectOut = c.HasProjections ? Matrix(e, c.Dim, 1.0 / Math.Sqrt(c.Dim)) : null,
        };
        weights.Validate("random model");
        return weights;
    }

    private const int FillBlock = 1 << 16;
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>Uniform values with the given mean and standard deviation; blocks are seeded independently so threads do not matter.</summary>
    private static float[] Fill(long count, long seed, int tensor, double std, double mean)
    {
        if (count > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(count), $"{count} weights do not fit in one array");
        var result = new float[count];
        int blocks = (int)((count + FillBlock - 1) / FillBlock);
        Parallel.For(0, blocks, b =>
        {
            long first = (long)b * FillBlock;
            FillRange(first, result.AsSpan((int)first, (int)Math.Min(FillBlock, count - first)), seed, tensor, std, mean);
        });
        return result;
    }

    /// <summary>
    /// Values [first, first + destination.Length) of a tensor: value i is drawn from the stream of its block of 2^16
    /// (seeded by seed, tensor and block) at its place in the block, so any range can be computed on its own.
    /// </summary>
    private static void FillRange(long first, Span<float> destination, long seed, int tensor, double std, double mean)
    {
        double halfWidth = std * Math.Sqrt(3.0);
        long end = first + destination.Length;
        for (long i = first; i < end;)
        {
            long b = i / FillBlock, blockEnd = Math.Min(end, (b + 1) * FillBlock);
            ulong state = Mix((ulong)seed * Golden ^ ((ulong)tensor << 32) ^ (ulong)b) + (ulong)(i - b * FillBlock) * Golden;
            for (; i < blockEnd; i++)
            {
                state += Golden;
                double u = (Mix(state) >> 11) * (1.0 / (1UL << 53)); // [0, 1)
                destination[(int)(i - first)] = (float)(mean + (2.0 * u - 1.0) * halfWidth);
            }
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
