using NUnit.Framework;
using System.Text;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

public class SafetensorsHostileTests
{
    private const string Ok = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";

    private static TestCaseData Case(string name, byte[] file, string expected) =>
        new TestCaseData(file, expected).SetName("Hostile_" + name);

    private static TestCaseData Header(string name, string header, int dataBytes, string expected) =>
        Case(name, TestModels.RawFile(header, dataBytes), expected);

    private static IEnumerable<TestCaseData> Corrupt()
    {
        yield return Case("Empty", [], "too short");
        yield return Case("SevenBytes", new byte[7], "too short");
        yield return Case("HeaderLongerThanFile", TestModels.RawFile(Ok, 8, headerLength: 1000), "past the end");
        yield return Case("HeaderLengthAbsurd", TestModels.RawFile(Ok, 8, headerLength: 200_000_000), "limit");
        yield return Case("HeaderLengthMaxULong", TestModels.RawFile(Ok, 8, headerLength: ulong.MaxValue), "limit");
        yield return Case("HeaderLengthSignBit", TestModels.RawFile(Ok, 8, headerLength: 1UL << 63), "limit");
        yield return Case("HeaderLengthZero", TestModels.RawFile(Ok, 8, headerLength: 0), "too small");
        yield return Header("NotJson", "{not json at all", 0, "not valid JSON");
        yield return Case("InvalidUtf8", TestModels.RawFile("{\"a\":1}", 0).Select((b, i) => i == 10 ? (byte)0xFF : b).ToArray(), "not valid JSON");
        yield return Header("RootIsArray", "[1,2,3]", 0, "JSON object");
        yield return Header("EntryIsNumber", """{"a":5}""", 0, "tensor 'a'");
        yield return Header("MissingDtype", """{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, "missing \"dtype\"");
        yield return Header("MissingShape", """{"a":{"dtype":"F32","data_offsets":[0,8]}}""", 8, "missing \"shape\"");
        yield return Header("MissingOffsets", """{"a":{"dtype":"F32","shape":[2]}}""", 8, "missing \"data_offsets\"");
        yield return Header("DtypeNotString", """{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}""", 8, "\"dtype\" is Number");
        yield return Header("ShapeNotArray", """{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}""", 8, "\"shape\" is Number");
        yield return Header("NegativeDim", """{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "shape[0]");
        yield return Header("FractionalDim", """{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}""", 8, "shape[0]");
        yield return Header("StringDim", """{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}""", 8, "shape[0]");
        yield return Header("HugeDim", """{"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,8]}}""", 8, "shape[0]");
        yield return Header("ShapeOverflow", """{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}""", 8, "64 bits");
        yield return Header("BytesOverflow", """{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}}""", 8, "2^63");
        yield return Header("ThreeOffsets", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}""", 16, "[begin, end]");
        yield return Header("EndBeforeBegin", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "before begin");
        yield return Header("EndPastData", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "past the 4-byte data section");
        yield return Header("OffsetMaxULong", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}""", 8, "data_offsets[1]");
        yield return Header("NegativeOffset", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", 8, "data_offsets[0]");
        yield return Header("SizeMismatch", """{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}""", 12, "span 12");
        yield return Header("SizeMismatchF16", """{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 6 bytes");
        yield return Header("Overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap");
        yield return Header("SameRange", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "overlap");
        yield return Header("DuplicateName", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "'a' twice");
        yield return Header("EmptyName", """{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, "empty name");
        yield return Header("MetadataNotObject", """{"__metadata__":"x","a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, "__metadata__");
        yield return Header("MetadataNumber", """{"__metadata__":{"format":1}}""", 0, "'format'");
    }

    [TestCaseSource(nameof(Corrupt))]
    public void CorruptSingleFileIsRejectedWithAClearMessage(byte[] file, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("model.safetensors"), file);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain(expected));
        Assert.That(e.Message, Does.Contain("model.safetensors"), "the message names the file");
    }

    [Test]
    public void TheValidBaseOfTheTableOpens()
    {
        // The corrupt cases differ from this one by the named defect only.
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("model.safetensors"), TestModels.RawFile(Ok, 8));
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.ReadF32("a"), Has.Length.EqualTo(2));
    }

    [Test]
    public void MissingFolderOrWeightsNameWhatWasLookedFor()
    {
        using var dir = new TempDir();
        var missing = Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(dir.File("nope")));
        Assert.That(missing!.Message, Does.Contain("folder not found"));
        File.WriteAllText(dir.File("pytorch_model.bin"), "x");
        var none = Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(dir.Path));
        Assert.That(none!.Message, Does.Contain("model.safetensors").And.Contain("model.safetensors.index.json"));
    }

    private static void WriteShard(TempDir dir, string name, string header, int dataBytes) =>
        File.WriteAllBytes(dir.File(name), TestModels.RawFile(header, dataBytes));

    private static void WriteIndex(TempDir dir, string json) => File.WriteAllText(dir.File("model.safetensors.index.json"), json);

    private const string ShardA = """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
    private const string ShardB = """{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";

    private static IEnumerable<TestCaseData> CorruptIndexes()
    {
        yield return new TestCaseData("""{"weight_map":{"a":"s1","b":"missing.safetensors"}}""", ShardB, "'missing.safetensors'").SetName("Index_MissingShard");
        yield return new TestCaseData("""{"weight_map":{"a":"s1","b":"s2"}}""", ShardA, "two shards").SetName("Index_TensorInTwoShards");
        yield return new TestCaseData("""{"weight_map":{"a":"s1","b":"s2","c":"s2"}}""", ShardB, "'c'").SetName("Index_NameAbsentFromShard");
        yield return new TestCaseData("""{"weight_map":{"a":"s2","b":"s2"}}""", ShardB, "'a'").SetName("Index_NameInOtherShard");
        yield return new TestCaseData("""{"metadata":{}}""", ShardB, "weight_map").SetName("Index_NoWeightMap");
        yield return new TestCaseData("""{"weight_map":[]}""", ShardB, "weight_map").SetName("Index_WeightMapArray");
        yield return new TestCaseData("""{"weight_map":{}}""", ShardB, "empty").SetName("Index_Empty");
        yield return new TestCaseData("""{"weight_map":{"a":7}}""", ShardB, "shard file name").SetName("Index_ShardNotString");
        yield return new TestCaseData("""{"weight_map":{"a":"../s1"}}""", ShardB, "inside the checkpoint folder").SetName("Index_PathEscape");
        yield return new TestCaseData("""{"weight_map":{"a":"/etc/passwd"}}""", ShardB, "inside the checkpoint folder").SetName("Index_AbsolutePath");
        yield return new TestCaseData("""{"weight_map":{"a":"s1","a":"s2"}}""", ShardB, "twice").SetName("Index_DuplicateKey");
        yield return new TestCaseData("""{"weight_map":{"a":"s1",}""", ShardB, "not valid JSON").SetName("Index_BadJson");
        yield return new TestCaseData("[]", ShardB, "JSON object").SetName("Index_NotObject");
    }

    [TestCaseSource(nameof(CorruptIndexes))]
    public void CorruptShardedCheckpointIsRejected(string index, string shard2Header, string expected)
    {
        using var dir = new TempDir();
        WriteShard(dir, "s1", ShardA, 4);
        WriteShard(dir, "s2", shard2Header, 4);
        WriteIndex(dir, index);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain(expected));
    }

    [Test]
    public void TheValidBaseOfTheShardTableOpens()
    {
        using var dir = new TempDir();
        WriteShard(dir, "s1", ShardA, 4);
        WriteShard(dir, "s2", ShardB, 4);
        WriteIndex(dir, """{"metadata":{"total_size":8},"weight_map":{"a":"s1","b":"s2"}}""");
        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.Tensors.Keys.Order(), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(BitConverter.SingleToUInt32Bits(ck.ReadF32("b")[0]), Is.EqualTo(0x16_0F_08_01u), "bytes 1, 8, 15, 22 little-endian");
    }

    [Test]
    public void ACorruptShardNamesTheShard()
    {
        using var dir = new TempDir();
        WriteShard(dir, "s1", ShardA, 4);
        File.WriteAllBytes(dir.File("s2"), Encoding.ASCII.GetBytes("garbage"));
        WriteIndex(dir, """{"weight_map":{"a":"s1","b":"s2"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain("s2").And.Contain("too short"));
    }
}
