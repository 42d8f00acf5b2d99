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

    /// <summary>
    /// Weights with entries uniform in ±sqrt(3)·σ (σ = 1/sqrt(fan-in) for matrices, 1 for the embedding), norms
    /// near 1 and small biases: activations stay O(1) through any depth.
    /// </summary>
    public static ModelWeights Create(ModelConfig cfg, long seed)
    {
        cfg.Validate("random model");
        long stream = 0;
        float[] Matrix(int rows, int cols) => Fill((long)rows * cols, 1.0 / Math.Sqrt(cols), 0, seed, stream++);
        float[] Norm(int n) => Fill(n, 0.1, 1.0, seed, stream++);
        float[] Bias(int n) => Fill(n, 0.02, 0, seed, stream++);

        var embedding = Fill((long)cfg.VocabSize * cfg.Dim, 1.0, 0, seed, stream++);
        var layers = new LayerWeights[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            layers[i] = new LayerWeights
            {
                AttnNorm = Norm(cfg.Dim),
                Wq = Matrix(cfg.QDim, cfg.Dim),
                Wk = Matrix(cfg.KvDim, cfg.Dim),
                Wv = Matrix(cfg.KvDim, cfg.Dim),
                Wo = Matrix(cfg.Dim, cfg.QDim),
                Bq = cfg.QkvBias ? Bias(cfg.QDim) : null,
                Bk = cfg.QkvBias ? Bias(cfg.KvDim) : null,
                Bv = cfg.QkvBias ? Bias(cfg.KvDim) : null,
                FfnNorm = Norm(cfg.Dim),
                WGate = Matrix(cfg.FfDim, cfg.Dim),
                WUp = Matrix(cfg.FfDim, cfg.Dim),
                WDown = Matrix(cfg.Dim, cfg.FfDim),
            };
        }
        var outputNorm = Norm(cfg.Dim);
        var output = cfg.TiedEmbedding ? embedding : Matrix(cfg.VocabSize, cfg.Dim);
        var w = new ModelWeights { Config = cfg, TokenEmbedding = embedding, Layers = layers, OutputNorm = outputNorm, Output = output };
        w.Validate("random model");
        return w;
    }

    /// <summary>n values uniform in center ± sqrt(3)·sigma, filled in fixed 64K blocks each with its own stream.</summary>
    private static float[] Fill(long n, double sigma, double center, long seed, long stream)
    {
        if (n > Array.MaxLength) throw new ArgumentException($"a tensor of {n} elements is larger than one array can hold");
        var a = new float[n];
        const int Block = 1 << 16;
        long blocks = (n + Block - 1) / Block;
        double half = Math.Sqrt(3) * sigma;
        Parallel.For(0L, blocks, b =>
        {
            ulong s = Mix((ulong)seed ^ Mix((ulong)stream * 0x9E3779B97F4A7C15UL ^ Mix((ulong)b + 1)));
            long end = Math.Min(n, (b + 1) * Block);
            for (long k = b * Block; k < end; k++)
            {
                s += 0x9E3779B97F4A7C15UL;
                double u = (Mix(s) >> 11) * (1.0 / (1UL << 53)); // [0, 1)
                a[k] = (float)(center + (2 * u - 1) * half);
            }
        });
        return a;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
