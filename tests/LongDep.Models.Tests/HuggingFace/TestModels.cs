using NUnit.Framework;
using System.Buffers.Binary;
using System.Text;

namespace LongDep.Models.Tests.HuggingFace;

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "longdep-hf-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Small models and hand-built safetensors files for tests.</summary>
internal static class TestModels
{
    public static ModelConfig Config(string arch = "llama", bool tied = false, RopeStyle rope = RopeStyle.Halves) => new()
    {
        Architecture = arch,
        Layers = 2,
        Dim = 8,
        FfDim = 12,
        Heads = 2,
        KvHeads = 1,
        HeadDim = 4,
        VocabSize = 16,
        ContextLength = 64,
        NormEps = 1e-5f,
        RopeTheta = 10000f,
        Rope = rope,
        QkvBias = arch == "qwen2",
        TiedEmbedding = tied,
    };

    public static float[] Random(Random rng, long n)
    {
        var a = new float[n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>Random weights for <paramref name="cfg"/>; the output head is the embedding array when tied.</summary>
    public static ModelWeights Weights(ModelConfig cfg, int seed = 1)
    {
        var rng = new Random(seed);
        var layers = new LayerWeights[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            layers[i] = new LayerWeights
            {
                AttnNorm = Random(rng, cfg.Dim),
                Wq = Random(rng, (long)cfg.QDim * cfg.Dim),
                Wk = Random(rng, (long)cfg.KvDim * cfg.Dim),
                Wv = Random(rng, (long)cfg.KvDim * cfg.Dim),
                Wo = Random(rng, (long)cfg.Dim * cfg.QDim),
                Bq = cfg.QkvBias ? Random(rng, cfg.QDim) : null,
                Bk = cfg.QkvBias ? Random(rng, cfg.KvDim) : null,
                Bv = cfg.QkvBias ? Random(rng, cfg.KvDim) : null,
                FfnNorm = Random(rng, cfg.Dim),
                WGate = Random(rng, (long)cfg.FfDim * cfg.Dim),
                WUp = Random(rng, (long)cfg.FfDim * cfg.Dim),
                WDown = Random(rng, (long)cfg.Dim * cfg.FfDim),
            };
        }
        var embedding = Random(rng, (long)cfg.VocabSize * cfg.Dim);
        return new ModelWeights
        {
            Config = cfg,
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = Random(rng, cfg.Dim),
            Output = cfg.TiedEmbedding ? embedding : Random(rng, (long)cfg.VocabSize * cfg.Dim),
        };
    }

    /// <summary>A safetensors file from a literal header JSON (no padding) and <paramref name="dataBytes"/> bytes of data.</summary>
    public static byte[] RawFile(string headerJson, int dataBytes, ulong? headerLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, headerLength ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        for (int i = 0; i < dataBytes; i++) file[8 + header.Length + i] = (byte)(i * 7 + 1);
        return file;
    }

    /// <summary>An in-memory tensor source for table/loader tests.</summary>
    public sealed class MemorySource(Dictionary<string, (long[] Shape, float[] Data)> tensors) : ITensorSource
    {
        public Dictionary<string, (long[] Shape, float[] Data)> Store { get; } = tensors;
        public string SourcePath => "memory";
        public IReadOnlyDictionary<string, TensorInfo> Tensors =>
            Store.ToDictionary(kv => kv.Key, kv => new TensorInfo(kv.Key, TensorType.F32, "F32", kv.Value.Shape, kv.Value.Data.LongLength * 4));
        public float[] ReadF32(string name) => (float[])Store[name].Data.Clone();
        public void Dispose() { }

        public static MemorySource From(IEnumerable<(string Name, float[] Data, long[] Shape)> tensors) =>
            new(tensors.ToDictionary(t => t.Name, t => (t.Shape, (float[])t.Data.Clone())));
    }
}
