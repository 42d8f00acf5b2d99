using NUnit.Framework;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

public class SafetensorsRoundTripTests
{
    /// <summary>Values that exercise rounding: random, ties, tiny, subnormal, signed zeros, large.</summary>
    private static float[] Values()
    {
        var rng = new Random(42);
        var list = new List<float>();
        for (int i = 0; i < 3000; i++) list.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-6, 5))));
        list.AddRange([0f, -0f, 1f, -1f, 65504f, 6.1e-5f, 3e-6f, 1e-40f, -2.5e-39f, 12345.678f]);
        // Exact bf16 ties: halfway between two bf16 values (both an even and an odd lower neighbour).
        list.Add(BitConverter.UInt32BitsToSingle(0x3F808000u));
        list.Add(BitConverter.UInt32BitsToSingle(0x3F818000u));
        list.Add(BitConverter.UInt32BitsToSingle(0xC0418000u));
        // An exact f16 tie: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
        list.Add(1f + MathF.Pow(2, -11));
        return list.ToArray();
    }

    /// <summary>Reference float → bf16 → float: the nearer of the two bf16 neighbours, ties to the even one, in double.</summary>
    private static float ReferenceBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint lo = bits & 0xFFFF0000u;
        uint hi = lo + 0x10000u;
        double dLo = Math.Abs((double)x - BitConverter.UInt32BitsToSingle(lo));
        double dHi = Math.Abs((double)x - BitConverter.UInt32BitsToSingle(hi));
        if (dLo < dHi) return BitConverter.UInt32BitsToSingle(lo);
        if (dHi < dLo) return BitConverter.UInt32BitsToSingle(hi);
        return BitConverter.UInt32BitsToSingle(((lo >> 16) & 1) == 0 ? lo : hi);
    }

    /// <summary>IEEE half bits decoded by hand: sign, 5-bit exponent (bias 15), 10-bit mantissa.</summary>
    private static double DecodeF16(ushort h)
    {
        int sign = (h >> 15) != 0 ? -1 : 1;
        int exp = (h >> 10) & 0x1F;
        int man = h & 0x3FF;
        if (exp == 0) return sign * Math.ScaleB(man, -24);
        if (exp == 31) return man == 0 ? sign * double.PositiveInfinity : double.NaN;
        return sign * Math.ScaleB(1024 + man, exp - 25);
    }

    /// <summary>Data section bytes of a single-tensor file written by the writer.</summary>
    private static ReadOnlySpan<byte> DataOf(byte[] file)
    {
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return file.AsSpan(8 + (int)n);
    }

    [Test]
    public void F32RoundTripIsExact()
    {
        using var dir = new TempDir();
        var v = Values();
        var m = TestModels.Random(new Random(3), 6 * 5);
        SafetensorsWriter.Write(dir.Path, [("v", v, [v.Length]), ("m", m, [6, 5])], TensorType.F32);
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Multiple(() =>
        {
            Assert.That(ck.ReadF32("v"), Is.EqualTo(v));
            Assert.That(ck.ReadF32("m"), Is.EqualTo(m));
            Assert.That(ck.Tensors["m"].Shape, Is.EqualTo(new long[] { 6, 5 }));
            Assert.That(ck.Tensors["m"].Type, Is.EqualTo(TensorType.F32));
            Assert.That(ck.Tensors["m"].ByteSize, Is.EqualTo(120));
            Assert.That(ck.Metadata["format"], Is.EqualTo("pt"));
        });
    }

    [Test]
    public void F16WriterRoundsToNearestAndReaderDecodesTheBits()
    {
        using var dir = new TempDir();
        var v = Values();
        SafetensorsWriter.Write(dir.Path, [("v", v, [v.Length])], TensorType.F16);
        var bytes = File.ReadAllBytes(dir.File("model.safetensors"));
        var data = DataOf(bytes);
        Assert.That(data.Length, Is.EqualTo(2 * v.Length));

        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        var read = ck.ReadF32("v");
        Assert.That(ck.Tensors["v"].Type, Is.EqualTo(TensorType.F16));
        for (int i = 0; i < v.Length; i++)
        {
            ushort h = BinaryPrimitives.ReadUInt16LittleEndian(data.Slice(2 * i));
            double decoded = DecodeF16(h);
            // Writer: the value stored is the nearest half (as the scalar Half conversion gives).
            Assert.That(decoded, Is.EqualTo((double)(float)(Half)v[i]), $"value {i}: {v[i]:R}");
            // Reader: float32 of the stored bits, decoded independently.
            Assert.That((double)read[i], Is.EqualTo(decoded), $"value {i}");
        }
        Assert.That(read[^1], Is.EqualTo(1f), "the f16 tie 1 + 2^-11 rounds to the even neighbour 1");
    }

    [Test]
    public void Bf16WriterRoundsToNearestEvenAndReaderShiftsTheBits()
    {
        using var dir = new TempDir();
        var v = Values().Append(float.NaN).ToArray();
        SafetensorsWriter.Write(dir.Path, [("v", v, [v.Length])], TensorType.BF16);
        var data = DataOf(File.ReadAllBytes(dir.File("model.safetensors")));

        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        var read = ck.ReadF32("v");
        Assert.That(ck.Tensors["v"].TypeName, Is.EqualTo("BF16"));
        for (int i = 0; i < v.Length - 1; i++)
        {
            ushort b = BinaryPrimitives.ReadUInt16LittleEndian(data.Slice(2 * i));
            float fromBits = BitConverter.UInt32BitsToSingle((uint)b << 16);
            Assert.That(fromBits, Is.EqualTo(ReferenceBf16(v[i])), $"value {i}: {v[i]:R}");
            Assert.That(read[i], Is.EqualTo(fromBits), $"value {i}");
        }
        Assert.Multiple(() =>
        {
            Assert.That(float.IsNaN(read[^1]), "NaN stays NaN");
            Assert.That(BitConverter.SingleToUInt32Bits(ReferenceBf16(BitConverter.UInt32BitsToSingle(0x3F808000u))), Is.EqualTo(0x3F800000u));
            Assert.That(BitConverter.SingleToUInt32Bits(ReferenceBf16(BitConverter.UInt32BitsToSingle(0x3F818000u))), Is.EqualTo(0x3F820000u));
        });
    }

    [Test]
    public void LongBf16TensorCrossesReaderChunks()
    {
        // Longer than the reader's 32K-element conversion chunk and not a multiple of the vector width.
        using var dir = new TempDir();
        var v = TestModels.Random(new Random(9), 70_001);
        SafetensorsWriter.Write(dir.Path, [("v", v, [v.Length])], TensorType.BF16);
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        var read = ck.ReadF32("v");
        for (int i = 0; i < v.Length; i++)
            if (read[i] != ReferenceBf16(v[i])) Assert.Fail($"element {i}: {read[i]:R} vs {ReferenceBf16(v[i]):R}");
    }

    [Test]
    public void HeaderIsPaddedAndOffsetsAreContiguous()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.Path, [("a", new float[3], [3]), ("bb", new float[5], [5, 1])], TensorType.F16);
        var file = File.ReadAllBytes(dir.File("model.safetensors"));
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(file, 8, (int)n));
        Assert.Multiple(() =>
        {
            Assert.That((8 + n) % 8, Is.EqualTo(0), "data starts 8-byte aligned");
            Assert.That(file.Length, Is.EqualTo(8 + n + 16));
            Assert.That(doc.RootElement.GetProperty("a").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 0, 6 }));
            Assert.That(doc.RootElement.GetProperty("bb").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 6, 16 }));
            Assert.That(doc.RootElement.GetProperty("bb").GetProperty("dtype").GetString(), Is.EqualTo("F16"));
        });
    }

    [Test]
    public void ShardedWriteMakesIndexAndReadsBack()
    {
        using var dir = new TempDir();
        var rng = new Random(5);
        var tensors = Enumerable.Range(0, 7).Select(i => ($"t{i}", TestModels.Random(rng, 10 + i), new long[] { 10 + i })).ToList();
        // 40, 44, ..., 64 bytes at F32; with a 100-byte limit: {t0,t1}=84, {t2,t3}=100, {t4}, {t5}, {t6}.
        var written = SafetensorsWriter.Write(dir.Path, tensors, TensorType.F32, maxShardBytes: 100);
        Assert.That(File.Exists(dir.File("model.safetensors")), Is.False);
        Assert.That(written[^1], Is.EqualTo(dir.File("model.safetensors.index.json")));
        int shardCount = written.Count - 1;
        Assert.That(shardCount, Is.EqualTo(5));
        Assert.That(Path.GetFileName(written[0]), Is.EqualTo("model-00001-of-00005.safetensors"));

        using (var doc = JsonDocument.Parse(File.ReadAllText(dir.File("model.safetensors.index.json"))))
        {
            var map = doc.RootElement.GetProperty("weight_map");
            Assert.That(map.EnumerateObject().Count(), Is.EqualTo(7));
            Assert.That(map.GetProperty("t0").GetString(), Is.EqualTo("model-00001-of-00005.safetensors"));
            Assert.That(map.GetProperty("t3").GetString(), Is.EqualTo("model-00002-of-00005.safetensors"));
            Assert.That(map.GetProperty("t6").GetString(), Is.EqualTo("model-00005-of-00005.safetensors"));
            Assert.That(doc.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(tensors.Sum(t => t.Item2.Length * 4L)));
        }
        foreach (var shard in written.Take(shardCount))
        {
            var bytes = File.ReadAllBytes(shard);
            Assert.That(bytes.Length - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes), Is.LessThanOrEqualTo(100), shard);
        }

        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.Tensors.Keys.Order(), Is.EqualTo(tensors.Select(t => t.Item1).Order()));
        foreach (var (name, data, shape) in tensors)
        {
            Assert.That(ck.ReadF32(name), Is.EqualTo(data), name);
            Assert.That(ck.Tensors[name].Shape, Is.EqualTo(shape), name);
        }
    }

    [Test]
    public void ATensorLargerThanTheShardLimitGetsItsOwnShard()
    {
        using var dir = new TempDir();
        var written = SafetensorsWriter.Write(dir.Path,
            [("small", new float[2], [2]), ("big", new float[100], [100]), ("tail", new float[1], [1])], TensorType.F32, maxShardBytes: 16);
        Assert.That(written, Has.Count.EqualTo(4)); // 3 shards + index
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.ReadF32("big"), Has.Length.EqualTo(100));
    }

    [Test]
    public void WritingOneLayoutRemovesTheOther()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.Path, [("a", new float[8], [8]), ("b", new float[8], [8])], TensorType.F32, maxShardBytes: 32);
        Assert.That(File.Exists(dir.File("model.safetensors.index.json")));
        SafetensorsWriter.Write(dir.Path, [("c", new float[] { 1, 2 }, [2])], TensorType.F32);
        Assert.That(File.Exists(dir.File("model.safetensors.index.json")), Is.False);
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.Tensors.Keys, Is.EqualTo(new[] { "c" }));
    }

    [Test]
    public void WriterRejectsBadInput()
    {
        using var dir = new TempDir();
        Assert.Multiple(() =>
        {
            Assert.That(() => SafetensorsWriter.Write(dir.Path, [("a", new float[6], [2, 2])], TensorType.F32),
                Throws.ArgumentException.With.Message.Contains("'a'").And.Message.Contains("6"));
            Assert.That(() => SafetensorsWriter.Write(dir.Path, [("a", new float[1], [1]), ("a", new float[1], [1])], TensorType.F32),
                Throws.ArgumentException.With.Message.Contains("twice"));
            Assert.That(() => SafetensorsWriter.Write(dir.Path, [("a", new float[1], [1])], TensorType.Q8_0),
                Throws.ArgumentException.With.Message.Contains("F16"));
            Assert.That(() => SafetensorsWriter.Write(dir.Path, [("__metadata__", new float[1], [1])], TensorType.F32),
                Throws.ArgumentException);
        });
        Assert.That(Directory.GetFiles(dir.Path), Is.Empty, "nothing is written when the input is rejected");
    }

    [Test]
    public void OtherDtypesAreListedButNotReadable()
    {
        using var dir = new TempDir();
        const string header = """
            {"__metadata__":{"format":"pt"},
             "q":{"dtype":"I8","shape":[2,3],"data_offsets":[0,6]},
             "d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},
             "x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[16,18]},
             "e":{"dtype":"F32","shape":[0,4],"data_offsets":[18,18]}}
            """;
        File.WriteAllBytes(dir.File("model.safetensors"), TestModels.RawFile(header, 18));
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Multiple(() =>
        {
            Assert.That(ck.Tensors["q"].Type, Is.EqualTo(TensorType.Other));
            Assert.That(ck.Tensors["q"].TypeName, Is.EqualTo("I8"));
            Assert.That(ck.Tensors["q"].Shape, Is.EqualTo(new long[] { 2, 3 }));
            Assert.That(ck.Tensors["d"].Type, Is.EqualTo(TensorType.Other));
            Assert.That(() => ck.ReadF32("q"), Throws.TypeOf<ModelFormatException>().With.Message.Contains("I8").And.Message.Contains("'q'"));
            Assert.That(() => ck.ReadF32("x"), Throws.TypeOf<ModelFormatException>().With.Message.Contains("F8_E4M3"));
            Assert.That(ck.ReadF32("e"), Is.Empty);
            Assert.That(() => ck.ReadF32("nope"), Throws.TypeOf<ModelFormatException>().With.Message.Contains("'nope'"));
        });
    }
}
