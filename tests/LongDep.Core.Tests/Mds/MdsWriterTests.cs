using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using static LongDep.Core.Tests.Mds.HandMds;

namespace LongDep.Core.Tests.Mds;

public class MdsWriterTests
{
    private static readonly MdsColumn[] PackColumns =
    [
        new("length", MdsEncoding.Int32), new("input_ids", MdsEncoding.NdArrayUInt32), new("domain", MdsEncoding.Str),
        new("indices", MdsEncoding.NdArrayUInt32),
    ];

    private static readonly Col[] PackCols =
        [new("domain", "str", null), new("indices", "ndarray:uint32", null), new("input_ids", "ndarray:uint32", null), new("length", "int32", 4)];

    private sealed record Seq(string Domain, int[] Ids, (int, int)[] Indices);

    private static Seq[] Sequences(int count, int length, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            int cut = rng.Next(1, length);
            return new Seq(i % 3 == 0 ? "books" : "fineweb-édu", Enumerable.Range(0, length).Select(_ => rng.Next(0, 300_000)).ToArray(),
                [(0, cut), (cut, length)]);
        }).ToArray();
    }

    private static void Write(MdsWriter w, Seq s)
    {
        w.BeginSample();
        w.WriteString(s.Domain);
        int[] pairs = s.Indices.SelectMany(p => new[] { p.Item1, p.Item2 }).ToArray();
        w.WriteIntArray(pairs, [s.Indices.Length, 2]);
        w.WriteIntArray(s.Ids);
        w.WriteInteger(s.Ids.Length);
        w.EndSample();
    }

    [TestCase(null)]
    [TestCase("zstd:5")]
    public void WrittenDataset_ParsedByTheDocumentedLayout_HoldsEveryField(string? compression)
    {
        using var dir = new TempDir();
        string ds = dir.File("out");
        Seq[] seqs = Sequences(25, 300, 1);
        MdsWriteSummary summary;
        using (var w = new MdsWriter(ds, PackColumns, new MdsWriterOptions { SizeLimit = 8000, Compression = compression }))
        {
            Assert.That(w.Columns.Select(c => c.Name), Is.EqualTo(new[] { "domain", "indices", "input_ids", "length" }), "sorted as MDSWriter sorts");
            foreach (Seq s in seqs) Write(w, s);
            summary = w.Finish();
        }

        using JsonDocument index = JsonDocument.Parse(File.ReadAllText(Path.Combine(ds, "index.json")));
        Assert.That(index.RootElement.GetProperty("version").GetInt32(), Is.EqualTo(2));
        JsonElement[] shards = index.RootElement.GetProperty("shards").EnumerateArray().ToArray();
        Assert.That(shards, Has.Length.GreaterThan(1), "the size limit cut several shards");
        Assert.That(summary.Shards, Is.EqualTo(shards.Length));
        var read = new List<Seq>();
        foreach (JsonElement shard in shards)
        {
            Assert.That(shard.GetProperty("format").GetString(), Is.EqualTo("mds"));
            Assert.That(shard.GetProperty("column_encodings").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(PackCols.Select(c => c.Encoding)));
            Assert.That(shard.GetProperty("column_sizes").GetRawText().Replace(" ", ""), Is.EqualTo("[null,null,null,4]"));
            Assert.That(shard.GetProperty("hashes").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "sha1", "xxh64" }));
            JsonElement raw = shard.GetProperty("raw_data");
            byte[] rawBytes;
            if (compression is null)
            {
                Assert.That(shard.GetProperty("zip_data").ValueKind, Is.EqualTo(JsonValueKind.Null));
                rawBytes = File.ReadAllBytes(Path.Combine(ds, raw.GetProperty("basename").GetString()!));
            }
            else
            {
                Assert.That(shard.GetProperty("compression").GetString(), Is.EqualTo("zstd:5"));
                JsonElement zip = shard.GetProperty("zip_data");
                string zipName = zip.GetProperty("basename").GetString()!;
                Assert.That(zipName, Does.EndWith(".mds.zstd"));
                Assert.That(File.Exists(Path.Combine(ds, raw.GetProperty("basename").GetString()!)), Is.False, "only the compressed file is kept");
                byte[] zipBytes = File.ReadAllBytes(Path.Combine(ds, zipName));
                Assert.That(zip.GetProperty("bytes").GetInt64(), Is.EqualTo(zipBytes.Length));
                Assert.That(zip.GetProperty("hashes").GetProperty("sha1").GetString(), Is.EqualTo(Sha1(zipBytes)));
                using var d = new ZstdSharp.Decompressor();
                rawBytes = d.Unwrap(zipBytes).ToArray();
            }
            Assert.That(raw.GetProperty("bytes").GetInt64(), Is.EqualTo(rawBytes.Length));
            Assert.That(raw.GetProperty("hashes").GetProperty("sha1").GetString(), Is.EqualTo(Sha1(rawBytes)));
            Assert.That(raw.GetProperty("hashes").GetProperty("xxh64").GetString(), Has.Length.EqualTo(16));

            byte[][] samples = SplitShard(rawBytes);
            Assert.That(shard.GetProperty("samples").GetInt32(), Is.EqualTo(samples.Length));
            // The config between the offset table and the first sample is MDSWriter's JSON.
            int configStart = 4 + 4 * (samples.Length + 1), firstSample = (int)BinaryPrimitives.ReadUInt32LittleEndian(rawBytes.AsSpan(4));
            using (JsonDocument config = JsonDocument.Parse(rawBytes.AsMemory(configStart, firstSample - configStart)))
                Assert.That(config.RootElement.GetProperty("column_names").GetArrayLength(), Is.EqualTo(4));
            foreach (byte[] sample in samples)
            {
                byte[][] v = SplitSample(PackCols, sample);
                read.Add(new Seq(Encoding.UTF8.GetString(v[0]), ReadUInt32Array(v[2]).Select(x => (int)x).ToArray(),
                    ReadPairs(v[1]).Select(p => ((int)p.Start, (int)p.End)).ToArray()));
                Assert.That(BinaryPrimitives.ReadInt32LittleEndian(v[3]), Is.EqualTo(read[^1].Ids.Length));
            }
        }
        Assert.That(read.Count, Is.EqualTo(seqs.Length));
        for (int i = 0; i < seqs.Length; i++)
        {
            Assert.That(read[i].Domain, Is.EqualTo(seqs[i].Domain));
            Assert.That(read[i].Ids, Is.EqualTo(seqs[i].Ids));
            Assert.That(read[i].Indices, Is.EqualTo(seqs[i].Indices));
        }

        // And our own reader agrees, field by field.
        var records = CorpusReader.OpenParsed(ds, Records.RecordFieldOptions.Default with { DomainField = "domain" }).ToArray();
        Assert.That(records.Select(r => r.Domain), Is.EqualTo(seqs.Select(s => s.Domain)));
        Assert.That(records.Select(r => r.InputIds), Is.EqualTo(seqs.Select(s => s.Ids)));
    }

    [Test]
    public void ShardsAreCut_AsMdsWriterCutsThem()
    {
        using var dir = new TempDir();
        string ds = dir.File("out");
        var rng = new Random(5);
        Seq[] seqs = Enumerable.Range(0, 60).Select(i => new Seq("d", Enumerable.Range(0, rng.Next(1, 200)).ToArray(), [(0, 1)])).ToArray();
        const long limit = 3000;
        using (var w = new MdsWriter(ds, PackColumns, new MdsWriterOptions { SizeLimit = limit, Hashes = [] }))
        {
            foreach (Seq s in seqs) Write(w, s);
            w.Finish();
        }
        string config = "{\"column_encodings\": [\"str\", \"ndarray:uint32\", \"ndarray:uint32\", \"int32\"], \"column_names\": [\"domain\", \"indices\", \"input_ids\", \"length\"], " +
                        "\"column_sizes\": [null, null, null, 4], \"compression\": null, \"format\": \"mds\", \"hashes\": [], \"size_limit\": 3000, \"version\": 2}";
        // MDSWriter: a shard starts at 4 + 4 + len(config) bytes; each sample adds its size + 4; a sample that would
        // pass the limit closes the shard first.
        var expected = new List<int>();
        long size = 8 + config.Length;
        int inShard = 0;
        foreach (Seq s in seqs)
        {
            int shapeBytes = s.Ids.Length < 256 ? 1 : 2;
            long sample = 12 + 1 + (1 + 2 + 8) + (1 + shapeBytes + 4 * s.Ids.Length) + 4;
            if (inShard > 0 && limit < size + sample + 4)
            {
                expected.Add(inShard);
                size = 8 + config.Length;
                inShard = 0;
            }
            size += sample + 4;
            inShard++;
        }
        expected.Add(inShard);
        using JsonDocument index = JsonDocument.Parse(File.ReadAllText(Path.Combine(ds, "index.json")));
        Assert.That(index.RootElement.GetProperty("shards").EnumerateArray().Select(s => s.GetProperty("samples").GetInt32()), Is.EqualTo(expected));
        byte[] shard0 = File.ReadAllBytes(Path.Combine(ds, "shard.00000.mds"));
        int first = (int)BinaryPrimitives.ReadUInt32LittleEndian(shard0.AsSpan(4));
        Assert.That(Encoding.UTF8.GetString(shard0, 4 + 4 * (expected[0] + 1), first - 4 - 4 * (expected[0] + 1)), Is.EqualTo(config));
    }

    [Test]
    public void CopyingEncodedSamples_GivesTheSameSamples()
    {
        using var dir = new TempDir();
        string a = dir.File("a"), b = dir.File("b");
        Seq[] seqs = Sequences(7, 50, 2);
        using (var w = new MdsWriter(a, PackColumns)) { foreach (Seq s in seqs) Write(w, s); w.Finish(); }
        MdsDataset source = MdsDataset.Open(a);
        using (var w = new MdsWriter(b, source.CommonColumns!, new MdsWriterOptions { Compression = "zstd" }))
        {
            foreach (MdsShard shard in source.ReadShards())
                for (int i = 0; i < shard.Count; i += 2) w.WriteEncoded(shard.SampleBytes(i));
            w.Finish();
        }
        var copied = CorpusReader.Open(b).Select(r => Encoding.UTF8.GetString(r.Line.Span)).ToArray();
        var original = CorpusReader.Open(a).Select(r => Encoding.UTF8.GetString(r.Line.Span)).Where((_, i) => i % 2 == 0).ToArray();
        Assert.That(copied, Is.EqualTo(original));
    }

    [Test]
    public void InterruptedWriter_LeavesNoDatasetAReaderAccepts_AndTheNextWriterCleansUp()
    {
        using var dir = new TempDir();
        string ds = dir.File("out");
        Directory.CreateDirectory(ds);
        File.WriteAllText(Path.Combine(ds, "notes.txt"), "mine");
        using (var w = new MdsWriter(ds, PackColumns, new MdsWriterOptions { SizeLimit = 2000 }))
        {
            foreach (Seq s in Sequences(20, 100, 3)) Write(w, s);
            Assert.That(Directory.GetFiles(ds, "shard.*"), Is.Not.Empty, "shards were closed on the way");
            // disposed without Finish: as after an error
        }
        Assert.That(Directory.GetFiles(ds).Select(Path.GetFileName), Is.EqualTo(new[] { "notes.txt" }));

        // A killed run leaves shards and a temp file but no index: unreadable, and removed by the next writer.
        File.WriteAllBytes(Path.Combine(ds, "shard.00000.mds"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(ds, "shard.00001.mds.tmp"), [4]);
        Assert.Throws<CorpusFormatException>(() => MdsDataset.Open(ds));
        using (var w = new MdsWriter(ds, PackColumns)) { Write(w, Sequences(1, 5, 4)[0]); w.Finish(); }
        Assert.That(Directory.GetFiles(ds).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "index.json", "notes.txt", "shard.00000.mds" }));

        // A complete dataset is replaced only when asked.
        var e = Assert.Throws<IOException>(() => new MdsWriter(ds, PackColumns))!;
        Assert.That(e.Message, Does.Contain("--overwrite"));
        using (var w = new MdsWriter(ds, PackColumns, overwrite: true)) { Write(w, Sequences(2, 5, 6)[1]); w.Finish(); }
        Assert.That(MdsDataset.Open(ds).SampleCount, Is.EqualTo(1));
    }

    [Test]
    public void ValuesThatDoNotFitTheColumns_AreRefused()
    {
        using var dir = new TempDir();
        using var w = new MdsWriter(dir.File("x"), PackColumns);
        w.BeginSample();
        Assert.Throws<InvalidOperationException>(() => w.WriteInteger(3), "domain is a str column");
        w.WriteString("d");
        Assert.Throws<ArgumentException>(() => w.WriteIntArray([]), "MDS cannot store empty arrays");
        Assert.Throws<ArgumentException>(() => w.WriteIntArray([-1, 2]), "uint32 holds no negatives");
        w.WriteIntArray([0, 1], [1, 2]);
        w.WriteIntArray([5]);
        Assert.Throws<InvalidOperationException>(() => w.EndSample(), "length is missing");
        w.WriteInteger(1);
        w.EndSample();
        Assert.Throws<ArgumentException>(() => w.WriteEncoded([1, 2, 3]));
        Assert.That(new MdsWriterOptions { Compression = "gzip" }.Validate(), Does.Contain("gzip"));
        Assert.That(new MdsWriterOptions { Hashes = ["xxh64", "sha1"] }.Validate(), Does.Contain("sorted"));
    }
}
