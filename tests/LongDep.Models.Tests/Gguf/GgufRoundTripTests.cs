using NUnit.Framework;
using LongDep.Models.Gguf;
using LongDep.Models.Quant;

namespace LongDep.Models.Tests.Gguf;

public class GgufRoundTripTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private GgufFile WriteAndOpen(GgufWriter w, string name = "m.gguf")
    {
        var path = _dir.Combine(name);
        w.Write(path);
        return GgufFile.Open(path);
    }

    [Test]
    public void Writer_ProducesTheSpecifiedBytes()
    {
        // One UInt32 key and one F32 tensor of row-major shape [1, 2] (GGUF ne = [2, 1]), laid out by hand from docs/gguf.md.
        var w = new GgufWriter();
        w.Add("a.b", 7u);
        w.AddTensor("t", [1.5f, -2f], [1, 2]);
        var path = _dir.Combine("exact.gguf");
        w.Write(path);

        var expected = new List<byte>();
        void Le(ulong v, int n) { for (int i = 0; i < n; i++) expected.Add((byte)(v >> (8 * i))); }
        expected.AddRange("GGUF"u8.ToArray());
        Le(3, 4);                         // version
        Le(1, 8); Le(1, 8);               // tensor count, kv count
        Le(3, 8); expected.AddRange("a.b"u8.ToArray()); Le(4, 4); Le(7, 4); // key, type UInt32, value
        Le(1, 8); expected.Add((byte)'t'); // tensor name
        Le(2, 4); Le(2, 8); Le(1, 8);      // n_dims, ne[0] = 2 (innermost), ne[1] = 1
        Le(0, 4); Le(0, 8);                // type F32, offset 0
        while (expected.Count % 32 != 0) expected.Add(0);
        Le(BitConverter.SingleToUInt32Bits(1.5f), 4);
        Le(BitConverter.SingleToUInt32Bits(-2f), 4);
        while (expected.Count % 32 != 0) expected.Add(0);

        Assert.That(File.ReadAllBytes(path), Is.EqualTo(expected.ToArray()));
        using var f = GgufFile.Open(path);
        Assert.That(f.Tensors["t"].Shape, Is.EqualTo(new long[] { 1, 2 }));
        Assert.That(f.DataStart, Is.EqualTo(96));
    }

    [TestCase(2u)]
    [TestCase(3u)]
    public void Metadata_EveryScalarType_RoundTrips(uint version)
    {
        var w = new GgufWriter(version);
        w.Add("u8", byte.MaxValue);
        w.Add("i8", sbyte.MinValue);
        w.Add("u16", ushort.MaxValue);
        w.Add("i16", short.MinValue);
        w.Add("u32", uint.MaxValue);
        w.Add("i32", int.MinValue);
        w.Add("u64", ulong.MaxValue);
        w.Add("i64", long.MinValue);
        w.Add("f32", 1.25e-3f);
        w.Add("f64", Math.PI);
        w.Add("yes", true);
        w.Add("no", false);
        w.Add("s", "héllo ✓ 日本");
        w.Add("empty", "");
        using var f = WriteAndOpen(w);

        Assert.That(f.Version, Is.EqualTo(version));
        Assert.That(f.Alignment, Is.EqualTo(32));
        Assert.That(f.Metadata.Keys, Is.EqualTo(new[] { "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "yes", "no", "s", "empty" }));
        Assert.Multiple(() =>
        {
            Assert.That(f.Metadata["u8"], Is.TypeOf<byte>().And.EqualTo(byte.MaxValue));
            Assert.That(f.Metadata["i8"], Is.TypeOf<sbyte>().And.EqualTo(sbyte.MinValue));
            Assert.That(f.Metadata["u16"], Is.TypeOf<ushort>().And.EqualTo(ushort.MaxValue));
            Assert.That(f.Metadata["i16"], Is.TypeOf<short>().And.EqualTo(short.MinValue));
            Assert.That(f.Metadata["u32"], Is.TypeOf<uint>().And.EqualTo(uint.MaxValue));
            Assert.That(f.Metadata["i32"], Is.TypeOf<int>().And.EqualTo(int.MinValue));
            Assert.That(f.Metadata["u64"], Is.TypeOf<ulong>().And.EqualTo(ulong.MaxValue));
            Assert.That(f.Metadata["i64"], Is.TypeOf<long>().And.EqualTo(long.MinValue));
            Assert.That(f.Metadata["f32"], Is.TypeOf<float>().And.EqualTo(1.25e-3f));
            Assert.That(f.Metadata["f64"], Is.TypeOf<double>().And.EqualTo(Math.PI));
            Assert.That(f.Metadata["yes"], Is.TypeOf<bool>().And.EqualTo(true));
            Assert.That(f.Metadata["no"], Is.TypeOf<bool>().And.EqualTo(false));
            Assert.That(f.Metadata["s"], Is.EqualTo("héllo ✓ 日本"));
            Assert.That(f.Metadata["empty"], Is.EqualTo(""));
        });
    }

    [TestCase(2u)]
    [TestCase(3u)]
    public void Metadata_ArraysOfEveryType_AndNestedArrays_RoundTrip(uint version)
    {
        var w = new GgufWriter(version);
        w.Add("a.u8", new byte[] { 0, 1, 255 });
        w.Add("a.i8", new sbyte[] { -128, 0, 127 });
        w.Add("a.u16", new ushort[] { 0, 65535 });
        w.Add("a.i16", new short[] { -32768, 32767 });
        w.Add("a.u32", new uint[] { 0, uint.MaxValue, 5 });
        w.Add("a.i32", new[] { int.MinValue, -1, int.MaxValue });
        w.Add("a.u64", new ulong[] { ulong.MaxValue });
        w.Add("a.i64", new[] { long.MinValue, 42L });
        w.Add("a.f32", new[] { 0.5f, -1e30f, float.Epsilon });
        w.Add("a.f64", new[] { -0.0, 1e300 });
        w.Add("a.bool", new[] { true, false, true });
        w.Add("a.str", new[] { "<s>", "", "▁the", "日本" });
        w.Add("a.empty", Array.Empty<float>());
        var nested = new GgufArray(GgufValueType.Array, new[]
        {
            new GgufArray(GgufValueType.Int32, new[] { 1, 2, 3 }),
            new GgufArray(GgufValueType.String, new[] { "x", "yz" }),
            new GgufArray(GgufValueType.Array, new[] { new GgufArray(GgufValueType.Bool, new[] { true }) }),
        });
        w.Add("a.nested", nested);
        using var f = WriteAndOpen(w);

        void Same(string key, GgufValueType type, Array values)
        {
            var a = (GgufArray)f.Metadata[key];
            Assert.That(a.ElementType, Is.EqualTo(type), key);
            Assert.That(a.Count, Is.EqualTo(values.Length), key);
            Assert.That(a.Values.GetType(), Is.EqualTo(values.GetType()), key);
            Assert.That(a.Values, Is.EqualTo(values), key);
        }
        Assert.Multiple(() =>
        {
            Same("a.u8", GgufValueType.UInt8, new byte[] { 0, 1, 255 });
            Same("a.i8", GgufValueType.Int8, new sbyte[] { -128, 0, 127 });
            Same("a.u16", GgufValueType.UInt16, new ushort[] { 0, 65535 });
            Same("a.i16", GgufValueType.Int16, new short[] { -32768, 32767 });
            Same("a.u32", GgufValueType.UInt32, new uint[] { 0, uint.MaxValue, 5 });
            Same("a.i32", GgufValueType.Int32, new[] { int.MinValue, -1, int.MaxValue });
            Same("a.u64", GgufValueType.UInt64, new ulong[] { ulong.MaxValue });
            Same("a.i64", GgufValueType.Int64, new[] { long.MinValue, 42L });
            Same("a.f32", GgufValueType.Float32, new[] { 0.5f, -1e30f, float.Epsilon });
            Same("a.f64", GgufValueType.Float64, new[] { -0.0, 1e300 });
            Same("a.bool", GgufValueType.Bool, new[] { true, false, true });
            Same("a.str", GgufValueType.String, new[] { "<s>", "", "▁the", "日本" });
            Same("a.empty", GgufValueType.Float32, Array.Empty<float>());
        });

        var back = (GgufArray)f.Metadata["a.nested"];
        Assert.That(back.ElementType, Is.EqualTo(GgufValueType.Array));
        var inner = (GgufArray[])back.Values;
        Assert.That(inner, Has.Length.EqualTo(3));
        Assert.That(inner[0].Values, Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(inner[1].Values, Is.EqualTo(new[] { "x", "yz" }));
        var deepest = (GgufArray[])inner[2].Values;
        Assert.That(deepest[0].ElementType, Is.EqualTo(GgufValueType.Bool));
        Assert.That(deepest[0].Values, Is.EqualTo(new[] { true }));
    }

    [Test]
    public void TypedGetters_ConvertCompatibleTypes_AndRejectOthers()
    {
        var w = new GgufWriter();
        w.Add("n.u8", (byte)200);
        w.Add("n.i16", (short)-5);
        w.Add("n.u64big", ulong.MaxValue);
        w.Add("n.f32", 0.5f);
        w.Add("n.f64", 1e-6);
        w.Add("s", "llama");
        w.Add("b", true);
        w.Add("arr.u16", new ushort[] { 1, 65535 });
        w.Add("arr.i64", new long[] { -3, 4 });
        w.Add("arr.i64big", new long[] { 1, 1L << 40 });
        w.Add("arr.f64", new[] { 0.25, -2.0 });
        w.Add("arr.f32", new[] { 1.5f, 2.5f });
        w.Add("arr.s", new[] { "a", "b" });
        using var f = WriteAndOpen(w);

        Assert.Multiple(() =>
        {
            Assert.That(f.GetInteger("n.u8"), Is.EqualTo(200));
            Assert.That(f.GetInteger("n.i16"), Is.EqualTo(-5));
            Assert.That(f.GetFloat("n.f32"), Is.EqualTo(0.5));
            Assert.That(f.GetFloat("n.f64"), Is.EqualTo(1e-6));
            Assert.That(f.GetFloat("n.u8"), Is.EqualTo(200.0));
            Assert.That(f.GetString("s"), Is.EqualTo("llama"));
            Assert.That(f.GetBool("b"), Is.True);
            Assert.That(f.GetIntArray("arr.u16"), Is.EqualTo(new[] { 1, 65535 }));
            Assert.That(f.GetIntArray("arr.i64"), Is.EqualTo(new[] { -3, 4 }));
            Assert.That(f.GetFloatArray("arr.f64"), Is.EqualTo(new[] { 0.25f, -2f }));
            Assert.That(f.GetFloatArray("arr.f32"), Is.EqualTo(new[] { 1.5f, 2.5f }));
            Assert.That(f.GetFloatArray("arr.u16"), Is.EqualTo(new[] { 1f, 65535f }));
            Assert.That(f.GetStringArray("arr.s"), Is.EqualTo(new[] { "a", "b" }));

            Assert.That(f.GetString("absent"), Is.Null);
            Assert.That(f.GetInteger("absent"), Is.Null);
            Assert.That(f.GetFloat("absent"), Is.Null);
            Assert.That(f.GetBool("absent"), Is.Null);
            Assert.That(f.GetStringArray("absent"), Is.Null);
            Assert.That(f.GetFloatArray("absent"), Is.Null);
            Assert.That(f.GetIntArray("absent"), Is.Null);
        });

        Assert.That(Assert.Throws<ModelFormatException>(() => f.GetString("n.u8"))!.Message, Does.Contain("'n.u8' has type UInt8, expected String"));
        Assert.Throws<ModelFormatException>(() => f.GetInteger("s"));
        Assert.Throws<ModelFormatException>(() => f.GetInteger("n.f32"));
        Assert.That(Assert.Throws<ModelFormatException>(() => f.GetInteger("n.u64big"))!.Message, Does.Contain("18446744073709551615"));
        Assert.Throws<ModelFormatException>(() => f.GetFloat("s"));
        Assert.Throws<ModelFormatException>(() => f.GetBool("n.u8"));
        Assert.Throws<ModelFormatException>(() => f.GetStringArray("arr.f32"));
        Assert.Throws<ModelFormatException>(() => f.GetStringArray("s"));
        Assert.Throws<ModelFormatException>(() => f.GetFloatArray("arr.s"));
        Assert.Throws<ModelFormatException>(() => f.GetIntArray("arr.f32"));
        Assert.That(Assert.Throws<ModelFormatException>(() => f.GetIntArray("arr.i64big"))!.Message, Does.Contain("element 1"));

        // Getters hand out copies: changing one does not change the file's metadata.
        f.GetStringArray("arr.s")![0] = "changed";
        Assert.That(f.GetStringArray("arr.s")![0], Is.EqualTo("a"));
    }

    private static byte[] HandQ8_0(int blocks, int seed)
    {
        var rng = new Random(seed);
        var bytes = new byte[34 * blocks];
        for (int b = 0; b < blocks; b++)
        {
            Bits.PutU16(bytes, 34 * b, Bits.Half(MathF.Pow(2, rng.Next(-8, 3))));
            for (int j = 0; j < 32; j++) bytes[34 * b + 2 + j] = (byte)rng.Next(256);
        }
        return bytes;
    }

    private static float Q8Value(byte[] bytes, int i)
    {
        int b = i / 32;
        float d = (float)BitConverter.UInt16BitsToHalf((ushort)(bytes[34 * b] | bytes[34 * b + 1] << 8));
        return d * (sbyte)bytes[34 * b + 2 + i % 32];
    }

    [TestCase(2u, 32)]
    [TestCase(3u, 32)]
    [TestCase(3u, 64)]
    [TestCase(2u, 256)]
    public void Tensors_RoundTrip(uint version, int alignment)
    {
        var rng = new Random(1);
        var f32 = Enumerable.Range(0, 15).Select(_ => (float)rng.NextDouble() * 10 - 5).ToArray();
        var f16 = Enumerable.Range(0, 2 * 64).Select(_ => (float)rng.NextDouble() * 4 - 2).ToArray();
        var bf16 = Enumerable.Range(0, 2 * 3 * 4).Select(i => (i - 12) / 8f).ToArray(); // exact in bfloat16
        var q8 = HandQ8_0(4, 2);
        var vec = new[] { 1f, 2f, 3f };

        var w = new GgufWriter(version, alignment);
        w.Add("general.architecture", "llama");
        w.AddTensor("f32", f32, [3, 5]);
        w.AddTensor("f16", f16, [2, 64], TensorType.F16);
        w.AddTensor("bf16", bf16, [2, 3, 4], TensorType.BF16);
        w.AddTensorRaw("q8", TensorType.Q8_0, [1, 2, 1, 64], q8);
        w.AddTensor("vec", vec, [3]);
        var path = _dir.Combine("t.gguf");
        w.Write(path);
        using var f = GgufFile.Open(path);

        Assert.That(f.Version, Is.EqualTo(version));
        Assert.That(f.Alignment, Is.EqualTo(alignment));
        Assert.That(f.Metadata.ContainsKey(GgufFile.AlignmentKey), Is.EqualTo(alignment != 32));
        if (alignment != 32) Assert.That(f.Metadata[GgufFile.AlignmentKey], Is.EqualTo((uint)alignment));
        Assert.That(f.TensorList.Select(t => t.Name), Is.EqualTo(new[] { "f32", "f16", "bf16", "q8", "vec" }));
        Assert.That(f.DataStart % alignment, Is.Zero);
        Assert.That(new FileInfo(path).Length % alignment, Is.Zero);
        foreach (var t in f.TensorList)
            Assert.That(f.DataOffset(t.Name) % alignment, Is.Zero, t.Name);

        Assert.Multiple(() =>
        {
            Assert.That(f.Tensors["f32"], Is.EqualTo(new TensorInfo("f32", TensorType.F32, "F32", [3, 5], 60)).Using<TensorInfo>(SameInfo));
            Assert.That(f.Tensors["f16"], Is.EqualTo(new TensorInfo("f16", TensorType.F16, "F16", [2, 64], 256)).Using<TensorInfo>(SameInfo));
            Assert.That(f.Tensors["bf16"], Is.EqualTo(new TensorInfo("bf16", TensorType.BF16, "BF16", [2, 3, 4], 48)).Using<TensorInfo>(SameInfo));
            Assert.That(f.Tensors["q8"], Is.EqualTo(new TensorInfo("q8", TensorType.Q8_0, "Q8_0", [1, 2, 1, 64], 136)).Using<TensorInfo>(SameInfo));
            Assert.That(f.Tensors["vec"].Shape, Is.EqualTo(new long[] { 3 }));

            Assert.That(f.ReadF32("f32"), Is.EqualTo(f32));
            Assert.That(f.ReadF32("f16"), Is.EqualTo(f16.Select(x => (float)(Half)x).ToArray()));
            Assert.That(f.ReadF32("bf16"), Is.EqualTo(bf16));
            Assert.That(f.ReadF32("q8"), Is.EqualTo(Enumerable.Range(0, 128).Select(i => Q8Value(q8, i)).ToArray()));
            Assert.That(f.ReadF32("vec"), Is.EqualTo(vec));
            Assert.That(f.RawBytes("q8"), Is.EqualTo(q8));
        });

        var into = new float[15];
        f.ReadF32("f32", into);
        Assert.That(into, Is.EqualTo(f32));
        Assert.Throws<ArgumentException>(() => f.ReadF32("f32", new float[14]));
    }

    private static bool SameInfo(TensorInfo a, TensorInfo b) =>
        a.Name == b.Name && a.Type == b.Type && a.TypeName == b.TypeName && a.Shape.SequenceEqual(b.Shape) && a.ByteSize == b.ByteSize;

    [Test]
    public void LargeTensors_AreReadInParallelChunks_Correctly()
    {
        // Bigger than one read chunk (2^18 values), with a short last chunk.
        const int rows = 9, cols = 65536 + 32;
        var f16 = new float[rows * cols];
        for (int i = 0; i < f16.Length; i++) f16[i] = (i % 2001 - 1000) / 64f; // exact in half
        var q8 = HandQ8_0(rows * cols / 32, 5);

        var w = new GgufWriter();
        w.AddTensor("big16", f16, [rows, cols], TensorType.F16);
        w.AddTensorRaw("bigq8", TensorType.Q8_0, [rows, cols], q8);
        using var f = WriteAndOpen(w);

        Assert.That(f.ReadF32("big16"), Is.EqualTo(f16));
        var got = f.ReadF32("bigq8");
        for (int i = 0; i < got.Length; i++)
            if (got[i] != Q8Value(q8, i)) Assert.Fail($"value {i}: expected {Q8Value(q8, i)}, got {got[i]}");
    }

    [Test]
    public void LazyTensor_IsProducedOnceAtWriteTime()
    {
        int calls = 0;
        var w = new GgufWriter();
        w.AddTensor("lazy", [2, 32], () => { calls++; return Enumerable.Range(0, 64).Select(i => i * 0.5f).ToArray(); }, TensorType.F16);
        Assert.That(calls, Is.Zero);
        using var f = WriteAndOpen(w);
        Assert.That(calls, Is.EqualTo(1));
        Assert.That(f.ReadF32("lazy"), Is.EqualTo(Enumerable.Range(0, 64).Select(i => i * 0.5f).ToArray()));

        var bad = new GgufWriter();
        bad.AddTensor("lazy", [4], () => new float[3]);
        Assert.Throws<InvalidOperationException>(() => bad.Write(_dir.Combine("bad.gguf")));
        Assert.That(Directory.GetFiles(_dir.Root), Has.None.Contains("bad.gguf"), "no partial file is left behind");
    }

    [Test]
    public void UnreadableType_OpensButReadingNamesTheType()
    {
        var w = new GgufWriter();
        w.AddTensorRaw("blk.0.ffn_down.weight", 17u /* IQ2_XS: 256 values in 74 bytes */, [2, 256], new byte[2 * 74]);
        using var f = WriteAndOpen(w);
        var t = f.Tensors["blk.0.ffn_down.weight"];
        Assert.That(t.Type, Is.EqualTo(TensorType.Other));
        Assert.That(t.TypeName, Is.EqualTo("IQ2_XS"));
        Assert.That(t.ByteSize, Is.EqualTo(148));
        var ex = Assert.Throws<ModelFormatException>(() => f.ReadF32("blk.0.ffn_down.weight"));
        Assert.That(ex!.Message, Does.Contain("tensor blk.0.ffn_down.weight has type IQ2_XS, which this tool does not read; supported: " +
            "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS"));
        Assert.That(f.RawBytes("blk.0.ffn_down.weight"), Has.Length.EqualTo(148));
    }

    [TestCase(19u, "IQ1_S", 256, 50)]
    [TestCase(35u, "TQ2_0", 256, 66)]
    [TestCase(39u, "MXFP4", 32, 17)]
    [TestCase(21u, "IQ3_S", 256, 110)]
    public void OtherTypesStayRefused_NamingTensorAndType(uint id, string name, int block, int bytes)
    {
        var w = new GgufWriter();
        w.AddTensorRaw("output.weight", id, [1, block], new byte[bytes]);
        using var f = WriteAndOpen(w);
        Assert.That(f.Tensors["output.weight"].Type, Is.EqualTo(TensorType.Other));
        var ex = Assert.Throws<ModelFormatException>(() => f.ReadF32("output.weight"));
        Assert.That(ex!.Message, Does.Contain($"tensor output.weight has type {name}, which this tool does not read"));
    }

    [TestCase(TensorType.Q4_0)]
    [TestCase(TensorType.Q5_1)]
    [TestCase(TensorType.Q3_K)]
    [TestCase(TensorType.Q5_K)]
    [TestCase(TensorType.IQ4_XS)]
    public void FloatTensor_WrittenAsABlockType_ReadsBackAsItsBlocks(TensorType type)
    {
        var rng = new Random(3);
        var data = Enumerable.Range(0, 3 * 512).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var w = new GgufWriter();
        w.AddTensor("m", data, [3, 512], type);
        using var f = WriteAndOpen(w);
        Assert.That(f.Tensors["m"].Type, Is.EqualTo(type));
        var blocks = new byte[Dequantize.ByteSize(type, data.Length)];
        Quantize.FromF32(type, data, blocks);
        Assert.That(f.RawBytes("m"), Is.EqualTo(blocks), "the file holds the quantizer's blocks");
        var expected = new float[data.Length];
        Dequantize.ToF32(type, blocks, expected);
        Assert.That(f.ReadF32("m"), Is.EqualTo(expected));
        double err = data.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(err, Is.LessThan(0.25), "the values survive quantization roughly");

        var bad = new GgufWriter();
        Assert.Throws<ArgumentException>(() => bad.AddTensor("r", new float[2 * 96], [2, 96], TensorType.Q4_K), "rows of 96 are not whole 256-value blocks");
    }

    [Test]
    public void MissingTensor_IsAModelFormatException()
    {
        var w = new GgufWriter();
        w.AddTensor("a", [1f], [1]);
        using var f = WriteAndOpen(w);
        Assert.That(Assert.Throws<ModelFormatException>(() => f.ReadF32("b"))!.Message, Does.Contain("tensor 'b' not found"));
    }

    [Test]
    public void Writer_RejectsBadArguments()
    {
        var w = new GgufWriter();
        w.Add("k", 1);
        Assert.Throws<ArgumentException>(() => w.Add("k", 2));
        Assert.Throws<ArgumentException>(() => w.Add("", 2));
        Assert.Throws<ArgumentException>(() => w.Add(GgufFile.AlignmentKey, 64u));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", new float[5], [2, 3]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", new float[5], [1, 1, 1, 1, 5]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", new float[32], [32], TensorType.Other));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", new float[48], [48], TensorType.Q8_0), "48 is not whole 32-value blocks");
        Assert.Throws<ArgumentException>(() => w.AddTensorRaw("t", TensorType.Q8_0, [2, 16], new byte[34]));
        Assert.Throws<ArgumentException>(() => w.AddTensorRaw("t", TensorType.Q8_0, [32], new byte[33]));
        Assert.Throws<ArgumentException>(() => w.AddTensorRaw("t", 4u, [32], new byte[18]));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('n', 65), new float[1], [1]));
        w.AddTensor("t", new float[1], [1]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", new float[1], [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new GgufWriter(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new GgufWriter(3, 48));
        Assert.Throws<ArgumentException>(() => _ = new GgufArray(GgufValueType.Int32, new uint[1]));
    }
}
