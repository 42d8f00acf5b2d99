using LongDep.Models;
using LongDep.Models.Gguf;
using LongDep.Models.Quant;
using LongDep.Models.Synthetic;

namespace LongDep.Cli.Tests;

/// <summary><c>longdep make-model --dtype</c> with GGUF block types.</summary>
public class MakeModelTests
{
    [TestCase("q8_0", TensorType.Q8_0)]
    [TestCase("q4_k", TensorType.Q5_0)] // the tiny shape's 64-value rows are not whole 256-value blocks: llama-quantize's fallback
    [TestCase("iq4_xs", TensorType.IQ4_NL)]
    public void BlockType_WritesQuantizedMatrices(string dtype, TensorType expected)
    {
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        var (code, err) = CliHarness.Run("make-model", "--shape", "tiny", "--dtype", dtype, "--seed", "5", "-o", path);
        Assert.That(code, Is.EqualTo(0), err);
        using var file = GgufFile.Open(path);
        Assert.That(file.TensorList.Where(t => t.Shape.Length == 2).Select(t => t.Type), Is.All.EqualTo(expected));
        Assert.That(file.TensorList.Where(t => t.Shape.Length == 1).Select(t => t.Type), Is.All.EqualTo(TensorType.F32));

        // The embedding is the seeded random weights, quantized and read back.
        var weights = RandomModel.Create(RandomModel.Shape("tiny"), 5);
        var embedding = weights.TokenEmbedding.ToFloat32();
        var blocks = new byte[Dequantize.ByteSize(expected, embedding.Length)];
        Quantize.FromF32(expected, embedding, blocks);
        var want = new float[embedding.Length];
        Dequantize.ToF32(expected, blocks, want);
        Assert.That(file.ReadF32("token_embd.weight"), Is.EqualTo(want));
        Assert.DoesNotThrow(() => ModelLoader.Load(path));
    }

    [TestCase("bf16", TensorType.BF16)]
    [TestCase("f32", TensorType.F32)]
    public void FloatType_WritesTheSeededWeightsInThatType(string dtype, TensorType expected)
    {
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        var (code, err) = CliHarness.Run("make-model", "--shape", "tiny", "--dtype", dtype, "--seed", "6", "-o", path);
        Assert.That(code, Is.EqualTo(0), err);
        using var file = GgufFile.Open(path);
        Assert.That(file.TensorList.Where(t => t.Shape.Length == 2).Select(t => t.Type), Is.All.EqualTo(expected));

        // Every matrix is the seeded random weights (computed tensor by tensor when written) rounded to the type.
        var weights = RandomModel.Create(RandomModel.Shape("tiny"), 6);
        var loaded = ModelLoader.Load(path).Weights;
        foreach (var (want, got) in weights.Tensors().Zip(loaded.Tensors()))
        {
            Assert.That(got.Name, Is.EqualTo(want.Name));
            var values = want.Data.ToFloat32();
            if (got.Data.Type == TensorType.BF16)
            {
                var bytes = new byte[values.Length * 2];
                Dequantize.FromF32ToBF16(values, bytes);
                values = new float[values.Length];
                Dequantize.ToF32(TensorType.BF16, bytes, values);
            }
            Assert.That(got.Data.ToFloat32(), Is.EqualTo(values), got.Name);
        }
    }

    [Test]
    public void BlockType_ForAHuggingFaceFolder_IsAUsageError()
    {
        using var dir = new TempDir();
        var (code, err) = CliHarness.Run("make-model", "--shape", "tiny", "--dtype", "q4_k", "--format", "hf", "-o", dir.File("hf"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--dtype q4_k is a GGUF block type; a Hugging Face folder is written as f16, bf16 or f32"));
        Assert.That(Directory.Exists(dir.File("hf")), Is.False, "nothing is written");
    }
}
