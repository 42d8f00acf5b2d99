using NUnit.Framework;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

/// <summary>Hostile and broken .bin files: each is refused with one line naming the file and the defect.</summary>
public class PyTorchHostileTests
{
    private static readonly TorchStorageType F32 = TorchStorageType.Known["FloatStorage"];

    /// <summary>A valid archive: w [2, 3] and its transpose over one storage, under top folder <paramref name="prefix"/>.</summary>
    internal static byte[] ValidFile(string prefix = "x")
    {
        using var dir = new TempDir();
        string path = dir.File("v.bin");
        PyTorchWriter.WriteArchive(path, prefix,
            [new("w", 0, 0, [2, 3], [3, 1]), new("wt", 0, 0, [3, 2], [1, 3])],
            [(new float[] { 1, 2, 3, 4, 5, 6 }, F32)]);
        return File.ReadAllBytes(path);
    }

    /// <summary>A zip archive with the given records, each stored or deflated.</summary>
    private static byte[] Zip(params (string Name, byte[] Data, bool Compress)[] records)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data, compress) in records)
            {
                var e = zip.CreateEntry(name, compress ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(data);
            }
        }
        return ms.ToArray();
    }

    private static byte[] Pickle(long numel = 6) =>
        new TorchPickleTests.P().Proto().OrderedDict().Mark().Str("w").Tensor("0", numel, 0, [2, 3], [3, 1]).Op('u', '.').Bytes;

    private static byte[] Floats(int n) => new byte[n * 4];

    /// <summary>Offset of the central-directory header of <paramref name="name"/>.</summary>
    private static int CentralHeader(byte[] file, string name)
    {
        var key = Encoding.UTF8.GetBytes(name);
        for (int i = file.Length - 46; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(i)) != 0x02014b50) continue;
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(i + 28));
            if (nameLen == key.Length && file.AsSpan(i + 46, nameLen).SequenceEqual(key)) return i;
        }
        throw new InvalidOperationException($"no central header for {name}");
    }

    private static byte[] Patch(byte[] file, string name, int field, uint value)
    {
        var f = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(CentralHeader(f, name) + field), value);
        return f;
    }

    private static TestCaseData Case(string name, byte[] file, params string[] expected) =>
        new TestCaseData(file, expected).SetName("HostileBin_" + name);

    private static IEnumerable<TestCaseData> Files()
    {
        var legacy = new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e };
        var tar = new byte[1024];
        "ustar"u8.CopyTo(tar.AsSpan(257));
        var valid = ValidFile();
        yield return Case("Empty", [], "the file is empty");
        yield return Case("Legacy", legacy, "legacy (pre-1.6) format", "torch.save(torch.load(path), path)");
        yield return Case("BarePickle", [0x80, 0x02, (byte)'}', (byte)'.'], "legacy (pre-1.6) format");
        yield return Case("OldTar", tar, "old tar format");
        yield return Case("Text", "hello, world"u8.ToArray(), "not a PyTorch checkpoint", "68656C6C");
        yield return Case("TruncatedZip", valid[..(valid.Length - 30)], "not a readable zip archive");
        yield return Case("HalfAZip", valid[..(valid.Length / 2)], "not a readable zip archive");
        yield return Case("NoPickle", Zip(("x/weights", Floats(6), false)), "no <folder>/data.pkl");
        yield return Case("TorchScript", Zip(("m/constants.pkl", [0x80, 2, (byte)'.'], false), ("m/code/m.py", "x"u8.ToArray(), false)), "TorchScript");
        yield return Case("TwoPickles", Zip(("a/data.pkl", Pickle(), false), ("b/data.pkl", Pickle(), false), ("a/data/0", Floats(6), false)), "2 data.pkl records");
        yield return Case("DeepPickle", Zip(("a/b/data.pkl", Pickle(), false)), "no <folder>/data.pkl");
        yield return Case("MissingStorage", Zip(("x/data.pkl", Pickle(), false)), "no record x/data/0");
        yield return Case("ShortStorage", Zip(("x/data.pkl", Pickle(), false), ("x/data/0", Floats(5), false)), "is 20 bytes", "6 × 4-byte elements");
        yield return Case("LongStorage", Zip(("x/data.pkl", Pickle(), false), ("x/data/0", Floats(7), false)), "is 28 bytes");
        yield return Case("HugeStorageClaim", Zip(("x/data.pkl", Pickle(1L << 40), false), ("x/data/0", Floats(6), false)), "is 24 bytes");
        yield return Case("CompressedStorage", Zip(("x/data.pkl", Pickle(), false), ("x/data/0", new byte[4000], true)), "is compressed");
        yield return Case("CompressedPickle", Zip(("x/data.pkl", Pickle(), true), ("x/data/0", Floats(6), false)), "is compressed");
        yield return Case("BigEndian", Zip(("x/data.pkl", Pickle(), false), ("x/byteorder", "big"u8.ToArray(), false), ("x/data/0", Floats(6), false)), "only little-endian");
        yield return Case("BadVersion", Zip(("x/data.pkl", Pickle(), false), ("x/version", "three"u8.ToArray(), false), ("x/data/0", Floats(6), false)), "format version");
        yield return Case("HugeVersionRecord", Zip(("x/data.pkl", Pickle(), false), ("x/version", new byte[1000], false), ("x/data/0", Floats(6), false)), "64-byte limit");
        yield return Case("DuplicateRecord", Zip(("x/data.pkl", Pickle(), false), ("x/data/0", Floats(6), false), ("x/data/0", Floats(6), false)), "two records named 'x/data/0'");
        yield return Case("EvilPickle", Zip(("x/data.pkl", new TorchPickleTests.P().Proto().Global("os", "system").Mark().Str("rm -rf /").Op('t', 'R', '.').Bytes, false)), "'os.system'");
        yield return Case("SizesLieInCentralDirectory", Patch(Patch(valid, "x/data/0", 20, 0x7FFFFFF0), "x/data/0", 24, 0x7FFFFFF0), "x/data/0");
        yield return Case("LocalHeaderPastTheEnd", Patch(valid, "x/data/0", 42, 0x7FFFFFF0), "");
        yield return Case("PickleHeaderPastTheEnd", Patch(valid, "x/data.pkl", 42, 0x7FFFFFF0), "");
    }

    [TestCaseSource(nameof(Files))]
    public void HostileFilesAreRefusedWithOneLine(byte[] file, string[] expected)
    {
        using var dir = new TempDir();
        string path = dir.File("pytorch_model.bin");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<ModelFormatException>(() =>
        {
            using var ck = PyTorchCheckpoint.Open(dir.Path);
            foreach (var name in ck.Tensors.Keys) ck.ReadF32(name);
        });
        Assert.That(e!.Message, Does.StartWith(path + ": "), "names the file");
        Assert.That(e.Message, Does.Not.Contain('\n'), "one line");
        foreach (var x in expected) Assert.That(e.Message, Does.Contain(x));
    }

    [Test]
    public void TheValidBaseOpensUnderAnyTopFolder()
    {
        foreach (var prefix in new[] { "x", "archive", "pytorch_model" })
        {
            using var dir = new TempDir();
            File.WriteAllBytes(dir.File("pytorch_model.bin"), ValidFile(prefix));
            using var ck = PyTorchCheckpoint.Open(dir.Path);
            Assert.That(ck.ReadF32("wt"), Is.EqualTo(new float[] { 1, 4, 2, 5, 3, 6 }), prefix);
        }
    }

    [Test]
    public void AFolderWithoutWeightsSaysWhatWasLookedFor()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        Assert.That(HuggingFaceModel.IsCheckpointFolder(dir.Path), Is.False);
        var e = Assert.Throws<ModelFormatException>(() => HuggingFaceModel.OpenWeights(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain("model.safetensors").And.Contain("pytorch_model.bin"));
        e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("pytorch_model.bin"));
    }

    [Test]
    public void CorruptedFilesOpenOrFailCleanly()
    {
        // 1500 random corruptions of a valid file (bytes anywhere, the pickle's bytes, zip header fields,
        // truncation): opening and reading every tensor either works or throws ModelFormatException.
        var original = ValidFile();
        int pickleAt = IndexOf(original, [0x80, 0x02, (byte)'c', (byte)'c', (byte)'o']);
        Assert.That(pickleAt, Is.GreaterThan(0));
        int pickleLen = PyTorchWriter.Pickle([new("w", 0, 0, [2, 3], [3, 1]), new("wt", 0, 0, [3, 2], [1, 3])], [(new float[6], F32)]).Length;
        int central = CentralHeader(original, "x/data.pkl");

        var rng = new Random(20250101);
        using var dir = new TempDir();
        string path = dir.File("pytorch_model.bin");
        int ok = 0, rejected = 0;
        for (int iter = 0; iter < 1500; iter++)
        {
            var bad = (byte[])original.Clone();
            string what;
            switch (rng.Next(5))
            {
                case 0:
                    for (int k = rng.Next(1, 5); k > 0; k--) bad[rng.Next(bad.Length)] ^= (byte)rng.Next(1, 256);
                    what = "flip bytes";
                    break;
                case 1:
                    for (int k = rng.Next(1, 4); k > 0; k--) bad[pickleAt + rng.Next(pickleLen)] = (byte)rng.Next(256);
                    what = "pickle bytes";
                    break;
                case 2:
                {
                    int at = central + rng.Next(46);
                    bad[at] = (byte)rng.Next(256);
                    what = $"central header byte {at - central}";
                    break;
                }
                case 3:
                    bad = bad[..rng.Next(bad.Length)];
                    what = "truncate";
                    break;
                default:
                {
                    int at = rng.Next(bad.Length - 4);
                    BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(at), (uint)rng.Next(int.MinValue, int.MaxValue));
                    what = $"word at {at}";
                    break;
                }
            }
            File.WriteAllBytes(path, bad);
            try
            {
                using var ck = PyTorchCheckpoint.Open(dir.Path);
                foreach (var name in ck.Tensors.Keys)
                {
                    if (ck.Tensors[name].Type == TensorType.Other) continue;
                    var v = ck.ReadF32(name);
                    if (v.LongLength != ck.Tensors[name].ElementCount) throw new InvalidOperationException($"{name}: {v.Length} values");
                }
                ok++;
            }
            catch (ModelFormatException)
            {
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iter} ({what}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        TestContext.Out.WriteLine($"corrupted .bin: {ok} opened, {rejected} rejected");
        Assert.That(rejected, Is.GreaterThan(500), "most corruptions are caught");
        Assert.That(ok, Is.GreaterThan(20), "harmless ones (data bytes) still open");
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);
}
