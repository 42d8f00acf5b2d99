using LongDep.Models;

namespace LongDep.Models.Tests.Cpu;

/// <summary>Random Llama-family models built in memory from a fixed seed, for the CPU forward tests.</summary>
internal static class TinyModels
{
    public static ModelWeights Create(int seed, string architecture = "llama", RopeStyle rope = RopeStyle.AdjacentPairs,
        bool qkvBias = false, bool tied = false, int layers = 2, int dim = 64, int heads = 4, int kvHeads = 2, int ff = 128,
        int vocab = 256, float theta = 10000f)
    {
        var config = new ModelConfig
        {
            Architecture = architecture,
            Layers = layers,
            Dim = dim,
            FfDim = ff,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = dim / heads,
            VocabSize = vocab,
            ContextLength = 1 << 17,
            NormEps = 1e-5f,
            RopeTheta = theta,
            Rope = rope,
            QkvBias = qkvBias,
            TiedEmbedding = tied,
        };
        var rng = new Random(seed);
        float[] Normal(long n, double sigma, double mean = 0)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++)
            {
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                a[i] = (float)(mean + sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
            return a;
        }
        int qDim = config.QDim, kvDim = config.KvDim;
        var layerWeights = new LayerWeights[layers];
        for (int l = 0; l < layers; l++)
        {
            layerWeights[l] = new LayerWeights
            {
                AttnNorm = Normal(dim, 0.1, 1.0),
                // Larger Q/K weights so that attention is far from uniform.
                Wq = Normal((long)qDim * dim, 0.2),
                Wk = Normal((long)kvDim * dim, 0.2),
                Wv = Normal((long)kvDim * dim, 0.1),
                Wo = Normal((long)dim * qDim, 0.1),
                Bq = qkvBias ? Normal(qDim, 0.2) : null,
                Bk = qkvBias ? Normal(kvDim, 0.2) : null,
                Bv = qkvBias ? Normal(kvDim, 0.1) : null,
                FfnNorm = Normal(dim, 0.1, 1.0),
                WGate = Normal((long)ff * dim, 0.1),
                WUp = Normal((long)ff * dim, 0.1),
                WDown = Normal((long)dim * ff, 0.05),
            };
        }
        var embedding = Normal((long)vocab * dim, 0.2);
        var weights = new ModelWeights
        {
            Config = config,
            TokenEmbedding = embedding,
            Layers = layerWeights,
            OutputNorm = Normal(dim, 0.1, 1.0),
            Output = tied ? embedding : Normal((long)vocab * dim, 0.1),
        };
        weights.Validate("tiny test model");
        return weights;
    }

    public static int[] RandomTokens(int seed, int n, int vocab)
    {
        var rng = new Random(seed);
        var t = new int[n];
        for (int i = 0; i < n; i++) t[i] = rng.Next(vocab);
        return t;
    }
}
