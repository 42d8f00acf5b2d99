using NUnit.Framework;
using LongDep.Models.Gguf;

namespace LongDep.Models.Tests.Gguf;

/// <summary>Malformed and hostile files: each must be refused with a ModelFormatException that names the problem.</summary>
public class GgufHostileFileTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private const ulong Huge = ulong.MaxValue;

    private ModelFormatException Rejects(byte[] bytes, string fragment)
    {
        var path = _dir.WriteBytes("bad.gguf", bytes);
        var ex = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path).Dispose());
        Assert.That(ex!.Message, Does.Contain(fragment));
        Assert.That(ex.Message, Does.StartWith(path + ": "), "the message names the file");
        return ex;
    }

    /// <summary>A valid file: header with one key and one F32 tensor of 4 values at offset 0.</summary>
    private static RawGguf OneTensor(string name, ulong[] ne, uint type, ulong offset) =>
        RawGguf.Header(1, 1).KvU32("k", 1).Tensor(name, ne, type, offset).Pad();

    [Test]
    public void HandBuiltBaseline_IsAccepted()
    {
        // Guards the other tests here: the same shape of file with sane fields opens.
        var bytes = OneTensor("t", [4], 0, 0).Zeros(16).ToArray();
        using var f = GgufFile.Open(_dir.WriteBytes("ok.gguf", bytes));
        Assert.That(f.ReadF32("t"), Is.EqualTo(new float[4]));
        Assert.That(f.GetInteger("k"), Is.EqualTo(1));
    }

    [Test]
    public void MissingFile_Directory_EmptyFile()
    {
        var missing = _dir.Combine("nope.gguf");
        Assert.That(Assert.Throws<ModelFormatException>(() => GgufFile.Open(missing))!.Message, Does.Contain("file not found"));
        Assert.That(Assert.Throws<ModelFormatException>(() => GgufFile.Open(_dir.Root))!.Message, Does.Contain("directory"));
        Rejects([], "expected GGUF");
        Rejects("GGU"u8.ToArray(), "expected GGUF");
    }

    [Test]
    public void BadMagic_SaysWhatWasFound()
    {
        var bytes = RawGguf.Header(0, 0).ToArray();
        "PK\x03\x04"u8.ToArray().CopyTo(bytes, 0);
        var ex = Rejects(bytes, "expected GGUF");
        Assert.That(ex.Message, Does.Contain("found 50 4B 03 04 'PK..'"));
    }

    [TestCase(1u, "version 1 is not supported")]
    [TestCase(4u, "unsupported GGUF version 4")]
    [TestCase(0u, "unsupported GGUF version 0")]
    [TestCase(0x03000000u, "big-endian")]
    public void UnsupportedVersions(uint version, string fragment) =>
        Rejects(RawGguf.Header(0, 0, version).ToArray(), fragment);

    [Test]
    public void TruncatedAtEveryByte_BeforeTheEndOfTheLastTensor()
    {
        var w = new GgufWriter(3, 64);
        w.Add("general.architecture", "llama");
        w.Add("tokenizer.ggml.tokens", new[] { "a", "bc", "def" });
        w.Add("tokenizer.ggml.scores", new[] { 0.5f, -1f, 2f });
        w.Add("nested", new GgufArray(GgufValueType.Array, new[] { new GgufArray(GgufValueType.UInt16, new ushort[] { 1, 2 }) }));
        w.AddTensor("a", new float[8], [2, 4]);
        w.AddTensor("b", new float[64], [64], Models.TensorType.F16);
        var path = _dir.Combine("full.gguf");
        w.Write(path);
        var full = File.ReadAllBytes(path);
        long end;
        using (var f = GgufFile.Open(path))
            end = f.TensorList.Max(t => f.DataOffset(t.Name) + t.ByteSize);
        Assert.That(end, Is.GreaterThan(200));

        for (int length = 0; length < end; length++)
        {
            var cut = _dir.WriteBytes("cut.gguf", full[..length]);
            try
            {
                GgufFile.Open(cut).Dispose();
                Assert.Fail($"a file cut to {length} of {full.Length} bytes was accepted");
            }
            catch (ModelFormatException) { }
        }
        // Cutting only the trailing padding leaves a valid file.
        using (GgufFile.Open(_dir.WriteBytes("cut.gguf", full[..(int)end]))) { }
    }

    [Test]
    public void TruncatedHeader_NamesTheOffset()
    {
        var bytes = RawGguf.Header(0, 1).Str("general.name").ToArray();
        Rejects(bytes, $"truncated header at offset {bytes.Length}");
    }

    [Test]
    public void HugeCounts_AreRefusedBeforeAllocating()
    {
        Rejects(RawGguf.Header(0, Huge).ToArray(), "metadata count");
        Rejects(RawGguf.Header(Huge, 0).ToArray(), "tensor count");
        Rejects(RawGguf.Header(1L << 40, 0).Zeros(64).ToArray(), "tensor count");
        Rejects(RawGguf.Header(0, 1).U64(Huge).Zeros(16).ToArray(), "string length 18446744073709551615 exceeds the remaining");
        Rejects(RawGguf.Header(0, 1).U64(1 << 20).Zeros(100).ToArray(), "string length 1048576 exceeds the remaining 100 bytes");
        // Array counts: a byte array and a string array each claiming more elements than bytes remain.
        Rejects(RawGguf.Header(0, 1).Str("a").U32(9).U32(0).U64(1UL << 62).Zeros(16).ToArray(), "array count");
        Rejects(RawGguf.Header(0, 1).Str("a").U32(9).U32(8).U64(3).Zeros(16).ToArray(), "array count");
        Rejects(RawGguf.Header(0, 1).Str("a").U32(9).U32(9).U64(Huge).ToArray(), "array count");
        // A string value whose length fits the file but exceeds the limit is refused as well.
        Rejects(RawGguf.Header(0, 1).Str("a").U32(8).U64(Huge / 2).Zeros(8).ToArray(), "string length");
    }

    [Test]
    public void BadMetadataEntries()
    {
        Rejects(RawGguf.Header(0, 1).Str("a").U32(13).U32(0).ToArray(), "unknown value type 13");
        Rejects(RawGguf.Header(0, 1).Str("a").U32(0xFFFFFFFF).ToArray(), "unknown value type");
        Rejects(RawGguf.Header(0, 1).Str("a").U32(9).U32(77).U64(0).ToArray(), "unknown element type 77");
        Rejects(RawGguf.Header(0, 1).Str("a").U32(7).U8(2).ToArray(), "expected 0 or 1");
        Rejects(RawGguf.Header(0, 1).Str("a").U32(9).U32(7).U64(2).U8(1).U8(5).ToArray(), "not a bool");
        Rejects(RawGguf.Header(0, 2).KvU32("dup", 1).KvU32("dup", 2).ToArray(), "duplicate metadata key 'dup'");
        Rejects(RawGguf.Header(0, 1).KvU32("", 1).ToArray(), "is empty");

        // Arrays nested deeper than the limit (a hostile file could otherwise recurse without bound).
        var deep = RawGguf.Header(0, 1).Str("deep").U32(9);
        for (int i = 0; i < 100; i++) deep.U32(9).U64(1);
        deep.U32(0).U64(0);
        Rejects(deep.ToArray(), "nests arrays");
    }

    [Test]
    public void BadAlignment()
    {
        Rejects(RawGguf.Header(0, 1).KvU32("general.alignment", 48).ToArray(), "power of two");
        Rejects(RawGguf.Header(0, 1).KvU32("general.alignment", 0).ToArray(), "power of two");
        Rejects(RawGguf.Header(0, 1).Str("general.alignment").U32(8).Str("32").ToArray(), "expected an unsigned integer");
    }

    [Test]
    public void BadTensorTable()
    {
        Rejects(OneTensor("t", [1, 1, 1, 1, 1], 0, 0).Zeros(4).ToArray(), "5 dimensions");
        Rejects(OneTensor("t", [], 0, 0).Zeros(4).ToArray(), "0 dimensions");
        Rejects(OneTensor("t", [1UL << 32, 1UL << 32], 0, 0).Zeros(4).ToArray(), "dims overflow");
        Rejects(OneTensor("t", [1UL << 62, 2, 2], 0, 0).Zeros(4).ToArray(), "dims overflow");
        Rejects(OneTensor("t", [1UL << 60], 0, 0).Zeros(4).ToArray(), "past end of file"); // 2^62 bytes are not there
        Rejects(OneTensor("t", [1UL << 62], 1, 0).Zeros(4).ToArray(), "dims overflow");      // 2^63 bytes of F16 overflows
        Rejects(OneTensor("t", [Huge], 0, 0).Zeros(4).ToArray(), "too large");
        Rejects(OneTensor("t", [4], 0, 8).Zeros(64).ToArray(), "not aligned");
        Rejects(OneTensor("t", [4], 0, 1UL << 40).Zeros(16).ToArray(), "past end of file");
        Rejects(OneTensor("t", [4], 0, Huge - 31).Zeros(16).ToArray(), "past end of file");
        Rejects(OneTensor("t", [8], 0, 0).Zeros(16).ToArray(), "past end of file");            // 32 bytes needed, 16 there
        Rejects(OneTensor("t", [4], 4, 0).Zeros(16).ToArray(), "unknown GGML type id 4");
        Rejects(OneTensor("t", [4], 100000, 0).Zeros(16).ToArray(), "unknown GGML type id 100000");
        Rejects(OneTensor("t", [16], 8, 0).Zeros(64).ToArray(), "not a multiple of its block size 32");
        Rejects(OneTensor("", [4], 0, 0).Zeros(16).ToArray(), "empty name");
        Rejects(OneTensor(new string('x', 65), [4], 0, 0).Zeros(16).ToArray(), "exceeds the limit of 64 bytes");

        var dupNames = RawGguf.Header(2, 0).Tensor("t", [4], 0, 0).Tensor("t", [4], 0, 32).Pad().Zeros(64).ToArray();
        Rejects(dupNames, "duplicate tensor name 't'");
        var overlap = RawGguf.Header(2, 0).Tensor("a", [16], 0, 0).Tensor("b", [4], 0, 32).Pad().Zeros(64).ToArray();
        Rejects(overlap, "overlap");
    }

    [Test]
    public void FileShrinkingAfterOpen_IsReportedOnRead()
    {
        var w = new GgufWriter();
        w.AddTensor("t", new float[64], [64]);
        var path = _dir.Combine("shrink.gguf");
        w.Write(path);
        using var f = GgufFile.Open(path);
        using (var s = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            s.SetLength(f.DataOffset("t") + 10);
        Assert.That(Assert.Throws<ModelFormatException>(() => f.ReadF32("t"))!.Message, Does.Contain("truncated after opening"));
    }
}
