using NUnit.Framework;
using System.Runtime.InteropServices;
using LongDep.Models.Gguf;

namespace LongDep.Models.Tests.Gguf;

/// <summary>
/// Checks the reader and the dequantizers against ggml itself: Fixtures/ggml-reference.gguf was written by ggml's
/// gguf writer, with tensors quantized by ggml ("q.TYPE") and ggml's own float32 dequantization of each beside it
/// ("ref.TYPE"); Fixtures/make_ggml_reference.c made it.
/// </summary>
public class GgufGgmlReferenceTests
{
    private static string FixturePath()
    {
        // Walk up from the test binaries to the test project folder, which holds the fixture.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "Gguf", "Fixtures", "ggml-reference.gguf");
            if (File.Exists(candidate)) return candidate;
        }
        Assert.Fail("Gguf/Fixtures/ggml-reference.gguf not found above " + AppContext.BaseDirectory);
        return "";
    }

    [Test]
    public void Metadata_WrittenByGgml_ReadsBackWithItsTypes()
    {
        using var f = GgufFile.Open(FixturePath());
        Assert.That(f.Version, Is.EqualTo(3));
        Assert.That(f.Alignment, Is.EqualTo(32));
        Assert.Multiple(() =>
        {
            Assert.That(f.GetString("general.architecture"), Is.EqualTo("llama"));
            Assert.That(f.Metadata["k.u8"], Is.TypeOf<byte>().And.EqualTo(250));
            Assert.That(f.Metadata["k.i8"], Is.TypeOf<sbyte>().And.EqualTo(-7));
            Assert.That(f.Metadata["k.u16"], Is.TypeOf<ushort>().And.EqualTo(65000));
            Assert.That(f.Metadata["k.i16"], Is.TypeOf<short>().And.EqualTo(-30000));
            Assert.That(f.Metadata["k.u32"], Is.TypeOf<uint>().And.EqualTo(4000000000u));
            Assert.That(f.Metadata["k.i32"], Is.TypeOf<int>().And.EqualTo(-2000000000));
            Assert.That(f.Metadata["k.f32"], Is.TypeOf<float>().And.EqualTo(0.1f));
            Assert.That(f.Metadata["k.u64"], Is.TypeOf<ulong>().And.EqualTo(18000000000000000000ul));
            Assert.That(f.Metadata["k.i64"], Is.TypeOf<long>().And.EqualTo(-9000000000000000000L));
            Assert.That(f.Metadata["k.f64"], Is.TypeOf<double>().And.EqualTo(2.718281828459045));
            Assert.That(f.GetBool("k.bool"), Is.True);
            Assert.That(f.GetString("k.str"), Is.EqualTo("héllo"));
            Assert.That(f.GetFloatArray("k.arr_f32"), Is.EqualTo(new[] { 1.5f, -2.25f, 3e-8f }));
            Assert.That(f.GetIntArray("k.arr_i32"), Is.EqualTo(new[] { -1, 0, 1, int.MaxValue }));
            Assert.That(f.GetStringArray("k.arr_str"), Is.EqualTo(new[] { "<s>", "", "▁the" }));
        });
    }

    [TestCase("q8_0", "Q8_0", TensorType.Q8_0)]
    [TestCase("q4_0", "Q4_0", TensorType.Q4_0)]
    [TestCase("q4_K", "Q4_K", TensorType.Q4_K)]
    [TestCase("q6_K", "Q6_K", TensorType.Q6_K)]
    [TestCase("f16", "F16", TensorType.F16)]
    [TestCase("bf16", "BF16", TensorType.BF16)]
    [TestCase("f32", "F32", TensorType.F32)]
    public void Dequantization_IsBitIdenticalToGgml(string ggmlName, string typeName, TensorType type)
    {
        using var f = GgufFile.Open(FixturePath());
        var q = f.Tensors["q." + ggmlName];
        Assert.That(q.Type, Is.EqualTo(type));
        Assert.That(q.TypeName, Is.EqualTo(typeName));
        Assert.That(q.Shape, Is.EqualTo(new long[] { 2, 512 }), "ggml ne = [512, 2], reversed");
        Assert.That(f.Tensors["ref." + ggmlName].Type, Is.EqualTo(TensorType.F32));

        var ours = f.ReadF32("q." + ggmlName);
        var ggml = f.ReadF32("ref." + ggmlName);
        Assert.That(ggml.Any(x => x != 0), Is.True, "reference values are present");
        var oursBits = MemoryMarshal.Cast<float, uint>(ours);
        var ggmlBits = MemoryMarshal.Cast<float, uint>(ggml);
        for (int i = 0; i < ours.Length; i++)
            if (oursBits[i] != ggmlBits[i])
                Assert.Fail($"{typeName} value {i}: ours {ours[i]:R}, ggml {ggml[i]:R}");
    }
}
