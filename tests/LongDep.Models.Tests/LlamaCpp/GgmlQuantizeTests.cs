using NUnit.Framework;
using LongDep.Models.Gguf;
using LongDep.Models.Quant;
using LongDep.Models.Synthetic;
using LongDep.Models.Tests.Gguf;

namespace LongDep.Models.Tests.LlamaCpp;

/// <summary>
/// Our quantizer (what <c>make-model</c> and <see cref="GgufWriter"/> write) against ggml's: the reference types are
/// byte-identical to ggml_quantize_chunk, the others are valid blocks about as accurate as ggml's, and a model written
/// in each type loads in llama.cpp and scores as our forward does.
/// </summary>
public class GgmlQuantizeTests
{
    private static readonly TensorType[] ReferenceTypes = [TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1];

    private static float[] Weights(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(0.05 * (1 + i / 512 % 3) * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        x[7] = 0.9f;      // an outlier
        x[300] = -0.7f;
        Array.Clear(x, 1024, 256); // an all-zero super-block
        return x;
    }

    [TestCaseSource(nameof(ReferenceTypes))]
    public void ReferenceTypes_AreByteIdenticalToGgml(TensorType type)
    {
        var x = Weights(8 * 512, 1);
        var ours = new byte[Dequantize.ByteSize(type, x.Length)];
        Quantize.FromF32(type, x, ours);
        var ggml = Ggml.Quantize(GgmlTypes.Of(type), x, 8, 512);
        int first = Enumerable.Range(0, ours.Length).FirstOrDefault(i => ours[i] != ggml[i], -1);
        Assert.That(first, Is.EqualTo(-1), $"{type}: first differing byte at {first}");
    }

    private static double RelativeRms(float[] x, float[] y)
    {
        double err = 0, norm = 0;
        for (int i = 0; i < x.Length; i++)
        {
            err += (x[i] - (double)y[i]) * (x[i] - (double)y[i]);
            norm += (double)x[i] * x[i];
        }
        return Math.Sqrt(err / norm);
    }

    [TestCaseSource(typeof(GgmlDequantizeTests), nameof(GgmlDequantizeTests.BlockTypes))]
    public void EveryBlockType_RoundTripsAboutAsWellAsGgml(TensorType type)
    {
        var x = Weights(8 * 512, 2);
        var ours = new byte[Dequantize.ByteSize(type, x.Length)];
        Quantize.FromF32(type, x, ours);
        var info = GgmlTypes.Of(type);
        var back = Ggml.Dequantize(info, ours, x.Length); // llama.cpp reads our blocks
        var ggmlBack = Ggml.Dequantize(info, Ggml.Quantize(info, x, 8, 512), x.Length);
        double oursErr = RelativeRms(x, back), ggmlErr = RelativeRms(x, ggmlBack);
        TestContext.Out.WriteLine($"{type}: relative RMS error ours {oursErr:F4}, ggml {ggmlErr:F4}");
        Assert.That(oursErr, Is.LessThan(1.6 * ggmlErr + 1e-4), $"{type} quantizes much worse than ggml");
        for (int i = 1024; i < 1280; i++) Assert.That(back[i], Is.EqualTo(0f), $"{type}: zeros stay zeros");
    }

    [TestCase(TensorType.Q4_K)]
    [TestCase(TensorType.Q2_K)]
    [TestCase(TensorType.IQ4_XS)]
    [TestCase(TensorType.Q5_1)]
    public void ModelSavedInABlockType_LoadsInLlamaCpp_AndScoresAsWeDo(TensorType type)
    {
        using var dir = new TempDir();
        var cfg = RandomModel.TinyConfig() with { Dim = 256, FfDim = 352, HeadDim = 64, VocabSize = 512 };
        var vocab = SyntheticText.Vocabulary(cfg.VocabSize, SyntheticText.Words(128));
        string path = dir.Combine($"{type}.gguf");
        GgufModel.Save(path, RandomModel.Create(cfg, 5), type, vocab);
        using (var f = GgufFile.Open(path))
        {
            Assert.That(f.Tensors["blk.0.attn_q.weight"].Type, Is.EqualTo(type));
            Assert.That(f.Tensors["blk.0.ffn_down.weight"].Type, Is.EqualTo(Quantize.FitRow(type, 352)), "352-value rows fall back");
        }
        var tokens = LlamaCppForwardTests.TinyTokens(40, 512, seed: 6);
        var ours = LlamaCppForwardTests.OurNll(path, tokens);
        string copy = dir.Combine($"{type}-as-f32.gguf");
        LlamaCppReference.WriteDequantizedCopy(path, copy);
        Assert.That(LlamaCppForwardTests.WorstRelative(ours, LlamaCppReference.TokenNll(copy, tokens), $"{type} written by us, vs llama.cpp on its weights as F32"),
            Is.LessThan(1e-5));
        Assert.That(LlamaCppForwardTests.WorstRelative(ours, LlamaCppReference.TokenNll(path, tokens), $"{type} written by us, vs llama.cpp on the file"),
            Is.LessThan(3e-2));
    }
}
