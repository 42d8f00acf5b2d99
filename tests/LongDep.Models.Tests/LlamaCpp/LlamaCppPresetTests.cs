using NUnit.Framework;
using LLama.Native;
using LongDep.Models.Cpu;
using LongDep.Models.Gguf;
using LongDep.Models.Quant;
using LongDep.Models.Synthetic;
using LongDep.Models.Tests.Gguf;

namespace LongDep.Models.Tests.LlamaCpp;

/// <summary>
/// llama-quantize's common presets, run by llama.cpp itself on a random llama model whose rows are whole 256-value
/// super-blocks for most tensors and not for the feed-forward down projection (352 columns), so that each preset's
/// fallback types appear too. Every file loads, and every tensor reads bit-exactly as ggml dequantizes it.
/// </summary>
[NonParallelizable]
public class LlamaCppPresetTests
{
    private static TempDir _dir = null!;
    private static string _f32 = null!;

    [OneTimeSetUp]
    public static void WriteSource()
    {
        _dir = new TempDir();
        var cfg = new ModelConfig
        {
            Architecture = "llama",
            Layers = 2,
            Dim = 256,
            FfDim = 352,
            Heads = 4,
            KvHeads = 2,
            HeadDim = 64,
            VocabSize = 512,
            ContextLength = 4096,
            NormEps = 1e-5f,
            RopeTheta = 10000f,
            Rope = RopeStyle.AdjacentPairs,
            QkvBias = false,
            TiedEmbedding = false,
        };
        var weights = RandomModel.Create(cfg, 21);
        var vocab = SyntheticText.Vocabulary(cfg.VocabSize, SyntheticText.Words(128));
        _f32 = _dir.Combine("source-f32.gguf");
        GgufModel.Save(_f32, weights, TensorType.F32, vocab, "preset source");
    }

    [OneTimeTearDown]
    public static void Cleanup() => _dir.Dispose();

    public static IEnumerable<TestCaseData> Presets()
    {
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q2_K, new[] { "Q2_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q3_K_S, new[] { "Q3_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q3_K_M, new[] { "Q3_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q3_K_L, new[] { "Q3_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q4_K_S, new[] { "Q4_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q4_K_M, new[] { "Q4_K", "Q6_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q5_K_S, new[] { "Q5_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q5_K_M, new[] { "Q5_K", "Q6_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q6_K, new[] { "Q6_K" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q8_0, new[] { "Q8_0" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_IQ4_XS, new[] { "IQ4_XS" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q4_0, new[] { "Q4_0" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q4_1, new[] { "Q4_1" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q5_0, new[] { "Q5_0" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_Q5_1, new[] { "Q5_1" });
        yield return new TestCaseData(LLamaFtype.MOSTLY_IQ4_NL, new[] { "IQ4_NL" });
    }

    [TestCaseSource(nameof(Presets))]
    public void Preset_LoadsAndEveryTensorReadsAsGgmlDequantizesIt(LLamaFtype preset, string[] expectedTypes)
    {
        string path = _dir.Combine($"{preset}.gguf");
        LlamaCppReference.Quantize(_f32, path, preset);

        var mix = new SortedDictionary<string, int>(StringComparer.Ordinal);
        using (var file = GgufFile.Open(path))
        {
            foreach (var t in file.TensorList)
            {
                mix[t.TypeName] = mix.GetValueOrDefault(t.TypeName) + 1;
                var read = file.ReadF32(t.Name);
                var ggml = Ggml.Dequantize(GgmlTypes.Of(t.Type), file.RawBytes(t.Name), read.Length);
                if (!read.AsSpan().SequenceEqual(ggml))
                    Assert.Fail($"{preset}: tensor {t.Name} ({t.TypeName}) reads differently from ggml's to_float");
            }
        }
        TestContext.Out.WriteLine($"{preset}: {string.Join(", ", mix.Select(kv => $"{kv.Key} x{kv.Value}"))}");
        Assert.That(mix.Keys, Is.SupersetOf(expectedTypes), $"{preset} writes its own types");

        // The model loads and scores as llama.cpp does in F32 on the very weights the file holds (ggml's dequantized
        // copy); llama.cpp on the quantized file itself rounds activations to 8 bits for quantized matrices, so that
        // direct comparison is held only to a sanity bound.
        var tokens = LlamaCppForwardTests.TinyTokens(48, 512, seed: 9);
        var ours = LlamaCppForwardTests.OurNll(path, tokens);
        string copy = _dir.Combine($"{preset}-as-f32.gguf");
        LlamaCppReference.WriteDequantizedCopy(path, copy);
        Assert.That(LlamaCppForwardTests.WorstRelative(ours, LlamaCppReference.TokenNll(copy, tokens), $"{preset} vs llama.cpp on its weights as F32"),
            Is.LessThan(1e-5));
        Assert.That(LlamaCppForwardTests.WorstRelative(ours, LlamaCppReference.TokenNll(path, tokens), $"{preset} vs llama.cpp on the quantized file"),
            Is.LessThan(3e-2));
    }
}
