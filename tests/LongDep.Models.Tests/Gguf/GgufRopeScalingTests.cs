using NUnit.Framework;
using LongDep.Models.Gguf;
using LongDep.Models.Synthetic;

namespace LongDep.Models.Tests.Gguf;

/// <summary>
/// RoPE scaling in GGUF metadata is read as llama.cpp reads it (linear, yarn, llama3 through rope_freqs); what is not
/// implemented is refused with the scaling named (reading it as plain RoPE would give wrong scores silently); files
/// that ask for none, or for a no-op linear factor, load as plain RoPE.
/// </summary>
public class GgufRopeScalingTests
{
    private TempDir _dir = null!;
    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    /// <summary>A tiny llama GGUF with <paramref name="extra"/> metadata (and optionally a rope_freqs tensor) added.</summary>
    private string Write(string name, IEnumerable<(string Key, object Value)> extra, bool ropeFreqs = false)
    {
        string plain = _dir.Combine("plain.gguf");
        var cfg = RandomModel.TinyConfig();
        GgufModel.Save(plain, RandomModel.Create(cfg, 3), TensorType.F32);
        var w = new GgufWriter();
        using (var f = GgufFile.Open(plain))
        {
            foreach (var (key, value) in f.Metadata)
            {
                switch (value)
                {
                    case string v: w.Add(key, v); break;
                    case uint v: w.Add(key, v); break;
                    case float v: w.Add(key, v); break;
                    default: Assert.Fail($"unexpected metadata type for {key}"); break;
                }
            }
            foreach (var t in f.TensorList) w.AddTensorRaw(t.Name, t.Type, t.Shape, f.RawBytes(t.Name));
        }
        foreach (var (key, value) in extra)
        {
            switch (value)
            {
                case string v: w.Add(key, v); break;
                case float v: w.Add(key, v); break;
                case uint v: w.Add(key, v); break;
                default: Assert.Fail($"unexpected extra type for {key}"); break;
            }
        }
        if (ropeFreqs) w.AddTensor("rope_freqs.weight", Enumerable.Repeat(1f, cfg.HeadDim / 2).ToArray(), [cfg.HeadDim / 2]);
        string path = _dir.Combine(name);
        w.Write(path);
        return path;
    }

    [TestCase("linear", 4f, RopeScalingType.Linear)]
    [TestCase("yarn", 4f, RopeScalingType.Yarn)]
    public void ScalingType_IsRead(string type, float factor, RopeScalingType expected)
    {
        string path = Write($"{type}.gguf", [("llama.rope.scaling.type", type), ("llama.rope.scaling.factor", factor),
            ("llama.rope.scaling.original_context_length", 1024u)]);
        using var f = GgufFile.Open(path);
        var c = GgufModel.ReadConfig(f);
        Assert.That(c.RopeScaling.Type, Is.EqualTo(expected));
        Assert.That(c.RopeScaling.Factor, Is.EqualTo(factor));
        Assert.DoesNotThrow(() => ModelLoader.Load(path));
    }

    [TestCase("dynamic", "RoPE scaling type 'dynamic' is not supported")]
    [TestCase("longrope", "longrope needs the rope_factors_long and rope_factors_short tensors")]
    [TestCase("ntk", "RoPE scaling type 'ntk' is not supported")]
    public void UnknownOrIncompleteScaling_IsRefusedByName(string type, string expected)
    {
        string path = Write($"{type}.gguf", [("llama.rope.scaling.type", type), ("llama.rope.scaling.factor", 2f)]);
        using var f = GgufFile.Open(path);
        var ex = Assert.Throws<ModelFormatException>(() => GgufModel.ReadConfig(f));
        Assert.That(ex!.Message, Does.Contain(expected));
        Assert.That(ex.Message, Does.StartWith(path));
        // Every way in refuses: inspect's Describe and the loader.
        Assert.Throws<ModelFormatException>(() => ModelLoader.Describe(path));
        Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path));
    }

    [Test]
    public void LegacyLinearScaleKey_WithoutType_IsReadAsLinear()
    {
        // llama.cpp reads a missing scaling type as linear, with the factor from rope.scale_linear.
        string path = Write("scale-linear.gguf", [("llama.rope.scale_linear", 2f)]);
        using var f = GgufFile.Open(path);
        var c = GgufModel.ReadConfig(f);
        Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.Linear));
        Assert.That(c.RopeScaling.Factor, Is.EqualTo(2));
    }

    [Test]
    public void AttentionFactor_WithoutYarn_IsRefused()
    {
        string path = Write("attn.gguf", [("llama.rope.scaling.type", "none"), ("llama.rope.scaling.attn_factor", 1.5f)]);
        using var f = GgufFile.Open(path);
        Assert.That(Assert.Throws<ModelFormatException>(() => GgufModel.ReadConfig(f))!.Message,
            Does.Contain("a RoPE attention factor of 1.5 ('llama.rope.scaling.attn_factor')"));
    }

    [Test]
    public void RopeFreqsTensor_IsLlama3Scaling()
    {
        string path = Write("llama3.gguf", [], ropeFreqs: true);
        using var f = GgufFile.Open(path);
        var c = GgufModel.ReadConfig(f);
        Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.Llama3));
        Assert.That(c.RopeScaling.FrequencyFactors, Is.EqualTo(Enumerable.Repeat(1f, c.HeadDim / 2)));
        Assert.DoesNotThrow(() => ModelLoader.Load(path), "the config consumed the rope_freqs tensor");
    }

    [TestCase("none", 8f)]
    [TestCase("linear", 1f)]
    [TestCase("linear", 0f)]
    public void NoScaling_StillLoads(string type, float factor)
    {
        string path = Write($"{type}-{factor}.gguf", [("llama.rope.scaling.type", type), ("llama.rope.scaling.factor", factor)]);
        using var f = GgufFile.Open(path);
        var c = GgufModel.ReadConfig(f);
        Assert.That(c.RopeTheta, Is.EqualTo(10000f));
        Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.None));
        Assert.DoesNotThrow(() => ModelLoader.Load(path));
    }
}
