namespace LongDep.Models.Synthetic;

/// <summary>
/// Random Llama-family models of a named shape, for the demo, benchmarks, the self-test and tests. The same
/// (config, seed) always gives the same weights, whatever the thread count. Random weights give meaningless scores;
/// they exercise every code path with realistic sizes.
/// </summary>
public static class RandomModel
{
    /// <summary>Named shapes: tinyllama (TinyLlama-1.1B), llama2-7b, tiny (2 layers, 64 dims, for demos and tests).</summary>
    public static ModelConfig Shape(string name, int? vocabSize = null, int contextLength = 32768) => name.ToLowerInvariant() switch
    {
        "tinyllama" => Llama(22, 2048, 5632, 32, 4, vocabSize ?? 32000, contextLength),
        "llama2-7b" => Llama(32, 4096, 11008, 32, 32, vocabSize ?? 32000, contextLength),
        "tiny" => Llama(2, 64, 128, 4, 2, vocabSize ?? 512, contextLength),
        _ => throw new ArgumentException($"unknown model shape '{name}' (known: tinyllama, llama2-7b, tiny)", nameof(name)),
    };

    /// <summary>The shape names <see cref="Shape"/> knows.</summary>
    public static IReadOnlyList<string> ShapeNames { get; } = ["tinyllama", "llama2-7b", "tiny"];

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
        RmsEps = 1e-5f,
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
        RmsEps = 1e-5f,
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
        RmsEps = 1e-5f,
        RopeTheta = 10000f,
        Rope = RopeStyle.AdjacentPairs,
        QkvBias = false,
        TiedEmbedding = false,
    };

    /// <summary>
    /// Weights for <paramref name="config"/>: matrices uniform with standard deviation 1/sqrt(fan-in), norm weights near 1,
    /// embeddings with unit variance, the output head scaled for logits of standard deviation about 2.
    /// </summary>
    public static ModelWeights Create(ModelConfig config, long seed)
    {
        config.Validate("random model config");
        var c = config;
        int tensor = 0;
        float[] Matrix(long rows, long cols, double std) => Fill(rows * cols, seed, tensor++, std, 0.0);
        float[] Norm(int n) => Fill(n, seed, tensor++, 0.1, 1.0);
        float[] Bias(int n) => Fill(n, seed, tensor++, 0.1, 0.0);

        // A tied table is also the output head: scale it like one (logits of standard deviation about 2).
        var embedding = Matrix(c.VocabSize, c.Dim, c.TiedEmbedding ? 2.0 / Math.Sqrt(c.Dim) : 1.0);
        var layers = new LayerWeights[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            double inv = 1.0 / Math.Sqrt(c.Dim);
            layers[i] = new LayerWeights
            {
                AttnNorm = Norm(c.Dim),
                Wq = Matrix(c.QDim, c.Dim, inv),
                Wk = Matrix(c.KvDim, c.Dim, inv),
                Wv = Matrix(c.KvDim, c.Dim, inv),
                Wo = Matrix(c.Dim, c.QDim, 1.0 / Math.Sqrt(c.QDim)),
                Bq = c.QkvBias ? Bias(c.QDim) : null,
                Bk = c.QkvBias ? Bias(c.KvDim) : null,
                Bv = c.QkvBias ? Bias(c.KvDim) : null,
                FfnNorm = Norm(c.Dim),
                WGate = Matrix(c.FfDim, c.Dim, inv),
                WUp = Matrix(c.FfDim, c.Dim, inv),
                WDown = Matrix(c.Dim, c.FfDim, 1.0 / Math.Sqrt(c.FfDim)),
            };
        }
        var outputNorm = Norm(c.Dim);
        var output = c.TiedEmbedding ? embedding : Matrix(c.VocabSize, c.Dim, 2.0 / Math.Sqrt(c.Dim));
        var weights = new ModelWeights
        {
            Config = c,
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = outputNorm,
            Output = output,
        };
        weights.Validate("random model");
        return weights;
    }

    /// <summary>Uniform values with the given mean and standard deviation; blocks are seeded independently so threads do not matter.</summary>
    private static float[] Fill(long count, long seed, int tensor, double std, double mean)
    {
        if (count > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(count), $"{count} weights do not fit in one array");
        var result = new float[count];
        const int block = 1 << 16;
        int blocks = (int)((count + block - 1) / block);
        double halfWidth = std * Math.Sqrt(3.0);
        Parallel.For(0, blocks, b =>
        {
            ulong state = Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)tensor << 32) ^ (ulong)b);
            long end = Math.Min(count, (long)(b + 1) * block);
            for (long i = (long)b * block; i < end; i++)
            {
                state += 0x9E3779B97F4A7C15UL;
                double u = (Mix(state) >> 11) * (1.0 / (1UL << 53)); // [0, 1)
                result[i] = (float)(mean + (2.0 * u - 1.0) * halfWidth);
            }
        });
        return result;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
