using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Selection;
using static LongDep.Core.Tests.Mds.HandMds;

namespace LongDep.Core.Tests.Mds;

public class MdsSelectionTests
{
    [Test]
    public void JsonLinesToMds_IdsRecords_KeepIdDomainMetaAndIds()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("in.jsonl"),
        [
            "{\"id\": \"a\", \"input_ids\": [1, 2, 3], \"meta\": {\"pile_set_name\": \"Books\", \"x\": 1}}",
            "{\"id\": \"b\", \"input_ids\": [4]}",
            "{\"id\": 7, \"input_ids\": [5, 70000], \"meta\": {\"pile_set_name\": \"Code\"}}",
        ]);
        var (read, written) = MdsSelectionCopier.Copy(dir.File("in.jsonl"), [0, 2], dir.File("out"), new MdsWriterOptions(), 3);
        Assert.That((read, written), Is.EqualTo((3L, 2L)));

        // By the documented layout: columns sorted, domain/id str, input_ids uint32 array, length int32, meta json.
        Col[] cols = [new("domain", "str", null), new("id", "str", null), new("input_ids", "ndarray:uint32", null), new("length", "int32", 4), new("meta", "json", null)];
        using JsonDocument index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("out"), "index.json")));
        Assert.That(index.RootElement.GetProperty("shards")[0].GetProperty("column_encodings").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(cols.Select(c => c.Encoding)));
        byte[][] samples = SplitShard(File.ReadAllBytes(Path.Combine(dir.File("out"), "shard.00000.mds")));
        byte[][] first = SplitSample(cols, samples[0]), second = SplitSample(cols, samples[1]);
        Assert.Multiple(() =>
        {
            Assert.That(Encoding.UTF8.GetString(first[0]), Is.EqualTo("Books"));
            Assert.That(Encoding.UTF8.GetString(first[1]), Is.EqualTo("a"));
            Assert.That(ReadUInt32Array(first[2]), Is.EqualTo(new uint[] { 1, 2, 3 }));
            Assert.That(BitConverter.ToInt32(first[3]), Is.EqualTo(3));
            Assert.That(JsonDocument.Parse(first[4]).RootElement.GetProperty("x").GetInt32(), Is.EqualTo(1));
            Assert.That(Encoding.UTF8.GetString(second[1]), Is.EqualTo("7"));
            Assert.That(ReadUInt32Array(second[2]), Is.EqualTo(new uint[] { 5, 70000 }));
        });
    }

    [Test]
    public void JsonLinesToMds_TextRecords_AndMixedKindsAreRefused()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("t.jsonl"), ["{\"text\": \"héllo\"}", "{\"text\": \"world\", \"meta\": {\"pile_set_name\": \"W\"}}"]);
        MdsSelectionCopier.Copy(dir.File("t.jsonl"), [0, 1], dir.File("t"), new MdsWriterOptions { Compression = "zstd" });
        var lines = CorpusReader.Open(dir.File("t")).Select(r => Encoding.UTF8.GetString(r.Line.Span)).ToArray();
        Assert.That(lines, Is.EqualTo(new[]
        {
            "{\"domain\":\"\",\"id\":\"\",\"meta\":null,\"text\":\"héllo\"}",
            "{\"domain\":\"W\",\"id\":\"\",\"meta\":{\"pile_set_name\":\"W\"},\"text\":\"world\"}",
        }));

        File.WriteAllLines(dir.File("m.jsonl"), ["{\"text\": \"a\"}", "{\"input_ids\": [1]}"]);
        var e = Assert.Throws<InvalidOperationException>(() => MdsSelectionCopier.Copy(dir.File("m.jsonl"), [0, 1], dir.File("m"), new MdsWriterOptions()))!;
        Assert.That(e.Message, Does.Contain("--format jsonl"));
        Assert.That(File.Exists(Path.Combine(dir.File("m"), "index.json")), Is.False);

        var same = Assert.Throws<InvalidOperationException>(() => MdsSelectionCopier.Copy(dir.File("t"), [0], dir.File("t") + "/", new MdsWriterOptions()))!;
        Assert.That(same.Message, Does.Contain("is the input"));
        Assert.That(MdsDataset.Open(dir.File("t")).SampleCount, Is.EqualTo(2), "the input is untouched");
    }

    [Test]
    public void MdsToMds_ChecksTheScoresMatchTheDataset()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("t.jsonl"), ["{\"text\": \"a\"}", "{\"text\": \"b\"}"]);
        MdsSelectionCopier.Copy(dir.File("t.jsonl"), [0, 1], dir.File("t"), new MdsWriterOptions());
        Assert.That(Assert.Throws<InvalidOperationException>(() => MdsSelectionCopier.Copy(dir.File("t"), [0], dir.File("o"), new MdsWriterOptions(), 3))!.Message,
            Does.Contain("the scores cover 3 records but t has 2"));
        Assert.That(Assert.Throws<InvalidOperationException>(() => MdsSelectionCopier.Copy(dir.File("t"), [5], dir.File("o"), new MdsWriterOptions()))!.Message,
            Does.Contain("select record 5"));
    }
}
