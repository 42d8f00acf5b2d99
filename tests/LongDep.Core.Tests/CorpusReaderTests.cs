using System.IO.Compression;
using System.Text;
using LongDep.Core.Corpus;
using LongDep.Core.Records;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace LongDep.Core.Tests;

public class CorpusReaderTests
{
    private static string[] Lines(int count, int padding = 0) =>
        Enumerable.Range(0, count)
            .Select(i => $"{{\"id\": \"d{i}\", \"text\": \"record {i} {new string('x', padding + i % 17)}\", \"meta\": {{\"pile_set_name\": \"D{i % 3}\"}}}}")
            .ToArray();

    private static byte[] Joined(IEnumerable<string> lines) => Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n");

    private static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return output.ToArray();
    }

    private static byte[] Zstd(byte[] data)
    {
        var output = new MemoryStream();
        using (var z = new ZstdSharp.CompressionStream(output, 3, 0, leaveOpen: true)) z.Write(data);
        return output.ToArray();
    }

    [Test]
    public void Jsonl_YieldsEveryRecordWithItsLineBytes_SkippingBlankLines()
    {
        using var dir = new TempDir();
        string path = dir.File("in.jsonl");
        // BOM, CRLF, a blank line, a bad line and a final line without newline.
        File.WriteAllBytes(path, [.. "\uFEFF{\"text\": \"a\"}\r\n\n  \nnot json\n{\"text\": \"b\"}"u8]);
        RawRecord[] raw = CorpusReader.Open(path).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(raw.Select(r => r.Index), Is.EqualTo(new long[] { 0, 1, 2 }));
            Assert.That(Encoding.UTF8.GetString(raw[0].Line.Span), Is.EqualTo("{\"text\": \"a\"}"));
            Assert.That(Encoding.UTF8.GetString(raw[1].Line.Span), Is.EqualTo("not json"));
            Assert.That(Encoding.UTF8.GetString(raw[2].Line.Span), Is.EqualTo("{\"text\": \"b\"}"));
        });
        InputRecord[] parsed = CorpusReader.OpenParsed(path).ToArray();
        Assert.That(parsed.Select(r => r.IsBad), Is.EqualTo(new[] { false, true, false }));
    }

    [Test]
    public void OverLongLine_IsABadRecord_AndReadingGoesOn()
    {
        using var dir = new TempDir();
        string path = dir.File("in.jsonl");
        string longLine = "{\"text\": \"" + new string('y', 5000) + "\"}";
        File.WriteAllText(path, "{\"text\": \"a\"}\n" + longLine + "\r\n{\"text\": \"c\"}\n");
        InputRecord[] records = CorpusReader.OpenParsed(path, maxLineBytes: 1000).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(records, Has.Length.EqualTo(3));
            Assert.That(records[1].Error, Does.Contain($"line 2 is {longLine.Length} bytes long").And.Contain("1000-byte limit"));
            Assert.That(records[2].Text, Is.EqualTo("c"));
        });
        // A line exactly at the cap (its '\r' not counted) is accepted.
        File.WriteAllText(path, longLine + "\r\n");
        Assert.That(CorpusReader.OpenParsed(path, maxLineBytes: longLine.Length).Single().Error, Is.Null);
        Assert.That(CorpusReader.OpenParsed(path, maxLineBytes: longLine.Length - 1).Single().Error, Does.Contain("limit"));
    }

    [TestCase("in.jsonl.gz")]
    [TestCase("in.jsonl.zst")]
    public void Compressed_RoundTrip(string name)
    {
        using var dir = new TempDir();
        string[] lines = Lines(3000, padding: 200);
        byte[] data = Joined(lines);
        File.WriteAllBytes(dir.File(name), name.EndsWith(".gz") ? Gzip(data) : Zstd(data));
        string[] read = CorpusReader.Open(dir.File(name)).Select(r => Encoding.UTF8.GetString(r.Line.Span)).ToArray();
        Assert.That(read, Is.EqualTo(lines));
    }

    [Test]
    public void Gzip_MultiMember_IsReadWhole()
    {
        using var dir = new TempDir();
        string[] lines = Lines(100);
        File.WriteAllBytes(dir.File("in.jsonl.gz"), [.. Gzip(Joined(lines.Take(40))), .. Gzip(Joined(lines.Skip(40)))]);
        Assert.That(CorpusReader.Open(dir.File("in.jsonl.gz")).Count(), Is.EqualTo(100));
    }

    [TestCase("in.jsonl.gz", 2)]
    [TestCase("in.jsonl.gz", 1)]
    [TestCase("in.jsonl.gz", 5)]
    [TestCase("in.jsonl.zst", 2)]
    [TestCase("in.jsonl.zst", 1)]
    public void Truncated_YieldsEarlierRecordsThenThrows(string name, int cut)
    {
        using var dir = new TempDir();
        string[] lines = Lines(6000, padding: 300); // ~2 MB of text
        byte[] data = Joined(lines);
        byte[] compressed = name.EndsWith(".gz") ? Gzip(data) : Zstd(data);
        // cut 2: half the file; 1 and 5: the last bytes (gzip trailer / zstd frame end).
        int keep = cut == 2 ? compressed.Length / 2 : compressed.Length - cut;
        File.WriteAllBytes(dir.File(name), compressed[..keep]);

        var read = new List<RawRecord>();
        var e = Assert.Throws<CorpusFormatException>(() =>
        {
            foreach (RawRecord r in CorpusReader.Open(dir.File(name))) read.Add(r);
        });
        Assert.That(e!.Message, Does.Contain(name).And.Contain("truncated"));
        if (cut == 2) Assert.That(read, Is.Not.Empty);
        // A gzip file cut inside its 8-byte trailer still decodes whole (only its check is lost): every record comes out
        // before the error. Otherwise the records after the cut cannot.
        if (name.EndsWith(".gz") && cut != 2) Assert.That(read.Count, Is.LessThanOrEqualTo(lines.Length));
        else Assert.That(read.Count, Is.LessThan(lines.Length));
        for (int k = 0; k < read.Count; k++)
        {
            Assert.That(read[k].Index, Is.EqualTo(k));
            Assert.That(Encoding.UTF8.GetString(read[k].Line.Span), Is.EqualTo(lines[k]));
        }
        if (read.Count > 0) Assert.That(e.Message, Does.Contain($"after record {read.Count - 1}"));
    }

    [Test]
    public void UnknownExtensionOrStdin_IsAClearError()
    {
        var e = Assert.Throws<CorpusFormatException>(() => CorpusReader.Open("corpus.csv"));
        Assert.That(e!.Message, Does.Contain(".jsonl, .jsonl.zst, .jsonl.gz, .parquet"));
        Assert.Throws<CorpusFormatException>(() => CorpusReader.Open("-"));
        Assert.Throws<FileNotFoundException>(() => CorpusReader.Open("/nonexistent/x.jsonl"));
        Assert.That(CorpusReader.DetectFormat("A.JSONL.ZST"), Is.EqualTo(CorpusFormat.JsonlZstd));
    }

    [Test]
    public async Task Parquet_RoundTrip_AcrossRowGroups()
    {
        using var dir = new TempDir();
        string path = dir.File("in.parquet");
        var schema = new ParquetSchema(
            new DataField<string>("id"),
            new DataField<string>("text"),
            new ListField("input_ids", new DataField<long>("element")),
            new StructField("meta", new DataField<string>("pile_set_name")));
        var rows = new List<IDictionary<string, object?>>();
        for (int i = 0; i < 5; i++)
        {
            rows.Add(new Dictionary<string, object?>
            {
                ["id"] = $"r{i}",
                ["text"] = i == 3 ? null : $"text {i} ünï",
                ["input_ids"] = i == 3 ? new List<long> { 7, 8, 9 } : new List<long>(),
                ["meta"] = new Dictionary<string, object?> { ["pile_set_name"] = i % 2 == 0 ? "ArXiv" : "Github" },
            });
        }
        await using (var file = File.Create(path))
            await ParquetSerializer.SerializeUntypedAsync(rows, schema, file, new ParquetOptions { RowGroupSize = 2 });
        await using (var check = File.OpenRead(path))
        await using (ParquetReader reader = await ParquetReader.CreateAsync(check))
            Assert.That(reader.RowGroupCount, Is.EqualTo(3));

        InputRecord[] records = CorpusReader.OpenParsed(path).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(records.Select(r => r.Index), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }));
            Assert.That(records.Select(r => r.Id), Is.EqualTo(new[] { "r0", "r1", "r2", "r3", "r4" }));
            Assert.That(records[1].Text, Is.EqualTo("text 1 ünï"));
            Assert.That(records[1].Domain, Is.EqualTo("Github"));
            Assert.That(records[3].Text, Is.Null);
            Assert.That(records[3].InputIds, Is.EqualTo(new[] { 7, 8, 9 }));
            Assert.That(records[0].InputIds, Is.Empty); // an empty list is still a (zero-token) ids field
            Assert.That(records.All(r => r.Error is null), Is.True);
            Assert.That(records[4].Meta!.Value.GetProperty("pile_set_name").GetString(), Is.EqualTo("ArXiv"));
        });
    }

    [Test]
    public async Task Parquet_Int32Ids_AndMetaAsJsonString()
    {
        using var dir = new TempDir();
        string path = dir.File("in.parquet");
        var schema = new ParquetSchema(
            new ListField("input_ids", new DataField<int>("element")),
            new DataField<string>("meta"));
        var rows = new List<IDictionary<string, object?>>
        {
            new Dictionary<string, object?> { ["input_ids"] = new List<int> { 1, 2 }, ["meta"] = "{\"pile_set_name\": \"Pile-CC\"}" },
            new Dictionary<string, object?> { ["input_ids"] = new List<int> { -5 }, ["meta"] = "plain" },
        };
        await using (var file = File.Create(path))
            await ParquetSerializer.SerializeUntypedAsync(rows, schema, file);

        InputRecord[] records = CorpusReader.OpenParsed(path).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(records[0].InputIds, Is.EqualTo(new[] { 1, 2 }));
            Assert.That(records[0].Domain, Is.EqualTo("Pile-CC"));
            Assert.That(records[0].Meta!.Value.ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Object));
            Assert.That(records[1].Error, Does.Contain("non-negative"));
            Assert.That(records[1].Meta!.Value.GetString(), Is.EqualTo("plain"));
        });
    }

    [Test]
    public void Parquet_NotAParquetFile_IsAClearError()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("bad.parquet"), "this is not parquet at all");
        var e = Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(dir.File("bad.parquet")).ToArray());
        Assert.That(e!.Message, Does.Contain("bad.parquet"));
    }
}
