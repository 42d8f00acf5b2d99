using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;
using static LongDep.Core.Tests.Mds.HandMds;

namespace LongDep.Core.Tests.Mds;

public class MdsReaderTests
{
    // ProLong's raw-data layout, columns sorted by name as MDSWriter stores them.
    private static readonly Col[] ProLong = [new("domain", "str", null), new("input_ids", "ndarray:uint32", null), new("length", "int32", 4)];

    private static byte[] ProLongSample(string domain, params uint[] ids) =>
        Sample(ProLong, [Str(domain), UInt32Array(ids), Int32(ids.Length)]);

    /// <summary>Writes a one-shard dataset built by hand; returns the folder.</summary>
    private static string Write(TempDir dir, Col[] columns, byte[][] samples, string folder = "ds", bool zstd = false)
    {
        string path = Path.Combine(dir.Path, folder);
        Directory.CreateDirectory(path);
        byte[] raw = Shard(samples);
        string entry;
        if (zstd)
        {
            using var compressor = new ZstdSharp.Compressor(3);
            byte[] zip = compressor.Wrap(raw).ToArray();
            File.WriteAllBytes(Path.Combine(path, "shard.00000.mds.zstd"), zip);
            entry = ShardEntry(columns, samples.Length, "shard.00000.mds", raw, "shard.00000.mds.zstd", zip);
        }
        else
        {
            File.WriteAllBytes(Path.Combine(path, "shard.00000.mds"), raw);
            entry = ShardEntry(columns, samples.Length, "shard.00000.mds", raw);
        }
        File.WriteAllText(Path.Combine(path, "index.json"), Index(entry));
        return path;
    }

    [Test]
    public void HashHexDigests_MatchPublishedTestVectors()
    {
        Assert.Multiple(() =>
        {
            Assert.That(MdsHashes.Compute("sha1", "abc"u8), Is.EqualTo("a9993e364706816aba3e25717850c26c9cd0d89d"));
            Assert.That(MdsHashes.Compute("md5", ""u8), Is.EqualTo("d41d8cd98f00b204e9800998ecf8427e"));
            Assert.That(MdsHashes.Compute("sha256", "abc"u8), Is.EqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
            Assert.That(MdsHashes.Compute("xxh64", ""u8), Is.EqualTo("ef46db3751d8e999"));
            Assert.That(MdsHashes.Compute("xxh32", ""u8), Is.EqualTo("02cc5d05"));
        });
    }

    [TestCase(false)]
    [TestCase(true)]
    public void HandBuiltProLongShard_ReadsBackEveryField(bool zstd)
    {
        using var dir = new TempDir();
        string ds = Write(dir, ProLong,
        [
            ProLongSample("books", 5, 6, 7),
            ProLongSample("code", 70000, 1, 2, 3, 4), // an id past uint16: still 4 bytes per element
            ProLongSample("books", 9),
        ], zstd: zstd);

        MdsDataset dataset = MdsDataset.Open(ds);
        Assert.That(dataset.SampleCount, Is.EqualTo(3));
        MdsShard shard = dataset.LoadShard(0);
        int ids = shard.Info.ColumnIndex("input_ids");
        Assert.That(MdsValue.TryReadArray(shard.Column(1, ids), shard.Info.Columns[ids].Encoding, out MdsArray array), Is.Null);
        var tokens = new int[array.Count];
        Assert.That(MdsValue.TryReadTokens(shard.Column(1, ids), array, tokens), Is.Null);
        Assert.That(tokens, Is.EqualTo(new[] { 70000, 1, 2, 3, 4 }));

        // Through the corpus reader: records with input_ids (no tokenizer), the domain column as the domain.
        var fields = RecordFieldOptions.Default with { DomainField = CorpusReader.DefaultDomainField(ds, "meta.pile_set_name") };
        InputRecord[] records = CorpusReader.OpenParsed(ds, fields).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(CorpusReader.DetectFormat(ds), Is.EqualTo(CorpusFormat.Mds));
            Assert.That(records.Select(r => r.Index), Is.EqualTo(new long[] { 0, 1, 2 }));
            Assert.That(records.Select(r => r.Domain), Is.EqualTo(new[] { "books", "code", "books" }));
            Assert.That(records[0].InputIds, Is.EqualTo(new[] { 5, 6, 7 }));
            Assert.That(records[1].InputIds, Is.EqualTo(new[] { 70000, 1, 2, 3, 4 }));
            Assert.That(records[2].InputIds, Is.EqualTo(new[] { 9 }));
            Assert.That(records.All(r => !r.IsBad));
            Assert.That(Encoding.UTF8.GetString(CorpusReader.Open(ds).First().Line.Span),
                Is.EqualTo("{\"domain\":\"books\",\"input_ids\":[5,6,7],\"length\":3}"));
        });
    }

    [Test]
    public void EveryColumnEncoding_IsShownAsJson()
    {
        using var dir = new TempDir();
        Col[] cols =
        [
            new("a_int", "int", 8), new("b_u16", "uint16", 2), new("c_f32", "float32", 4), new("d_strint", "str_int", null),
            new("e_json", "json", null), new("f_dyn", "ndarray", null), new("g_static", "ndarray:int16:2,3", 12),
            new("h_bytes", "bytes", null), new("i_png", "png", null), new("j_strfloat", "str_float", null),
        ];
        byte[] f32 = BitConverter.GetBytes(1.5f);
        byte[] dyn = HandMds.Array([.. Le(unchecked((ulong)-3L), 8), .. Le(4, 8)], dtypeCode: 65, [2]); // int64, dtype in the value
        byte[] stat = Enumerable.Range(0, 6).SelectMany(k => Le(unchecked((ulong)(k - 2)), 2)).ToArray(); // int16 [[-2,-1,0],[1,2,3]]
        byte[] sample = Sample(cols,
        [
            Int64(-7_000_000_000), Le(65535, 2), f32, Str("123456789012"), Str("{\"k\": [1, \"x\"]}"), dyn, stat,
            [0xff, 0x00], [0x89, 0x50], Str("2.5e3"),
        ]);
        string ds = Write(dir, cols, [sample]);
        string line = Encoding.UTF8.GetString(CorpusReader.Open(ds).Single().Line.Span);
        using JsonDocument doc = JsonDocument.Parse(line);
        JsonElement r = doc.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(r.GetProperty("a_int").GetInt64(), Is.EqualTo(-7_000_000_000));
            Assert.That(r.GetProperty("b_u16").GetInt32(), Is.EqualTo(65535));
            Assert.That(r.GetProperty("c_f32").GetDouble(), Is.EqualTo(1.5));
            Assert.That(r.GetProperty("d_strint").GetInt64(), Is.EqualTo(123456789012));
            Assert.That(r.GetProperty("e_json").GetProperty("k")[1].GetString(), Is.EqualTo("x"));
            Assert.That(r.GetProperty("f_dyn").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { -3, 4 }));
            Assert.That(r.GetProperty("g_static").GetRawText(), Is.EqualTo("[[-2,-1,0],[1,2,3]]"));
            Assert.That(r.GetProperty("h_bytes").GetString(), Is.EqualTo(Convert.ToBase64String(new byte[] { 0xff, 0x00 })));
            Assert.That(r.TryGetProperty("i_png", out _), Is.False, "images are left out");
            Assert.That(r.GetProperty("j_strfloat").GetDouble(), Is.EqualTo(2500));
        });
    }

    [Test]
    public void MergedIndex_WithSubfolderBasenames_ReadsShardsInIndexOrder()
    {
        using var dir = new TempDir();
        string root = Path.Combine(dir.Path, "merged");
        var entries = new List<string>();
        foreach (var (sub, first) in new[] { ("job0", 10u), ("job1", 20u) })
        {
            Directory.CreateDirectory(Path.Combine(root, sub));
            byte[] raw = Shard([ProLongSample(sub, first), ProLongSample(sub, first + 1)]);
            File.WriteAllBytes(Path.Combine(root, sub, "shard.00000.mds"), raw);
            entries.Add(ShardEntry(ProLong, 2, $"{sub}/shard.00000.mds", raw));
        }
        File.WriteAllText(Path.Combine(root, "index.json"), Index([.. entries]));
        var records = CorpusReader.OpenParsed(root, RecordFieldOptions.Default with { DomainField = "domain" }).ToArray();
        Assert.That(records.Select(r => r.InputIds![0]), Is.EqualTo(new[] { 10, 11, 20, 21 }));
        Assert.That(records.Select(r => r.Index), Is.EqualTo(new long[] { 0, 1, 2, 3 }));
    }

    [Test]
    public void UndecodableValue_IsABadRecord_AndReadingGoesOn()
    {
        using var dir = new TempDir();
        byte[] badUtf8 = Sample(ProLong, [[0xc3, 0x28], UInt32Array(1), Int32(1)]);
        string ds = Write(dir, ProLong, [ProLongSample("a", 1), badUtf8, ProLongSample("c", 3)]);
        InputRecord[] records = CorpusReader.OpenParsed(ds).ToArray();
        Assert.That(records.Select(r => r.IsBad), Is.EqualTo(new[] { false, true, false }));
        Assert.That(records[1].Error, Does.Contain("domain").And.Contain("UTF-8"));
    }

    [Test]
    public void NegativeOrHugeIds_MakeBadRecords()
    {
        using var dir = new TempDir();
        Col[] cols = [new("input_ids", "ndarray:int32", null)];
        byte[] neg = Sample(cols, [HandMds.Array(Le(unchecked((ulong)-5L), 4), null, [1])]);
        Col[] ucols = [new("input_ids", "ndarray:uint32", null)];
        string a = Write(dir, cols, [neg], "neg");
        string b = Write(dir, ucols, [Sample(ucols, [UInt32Array(3_000_000_000)])], "huge");
        Assert.That(CorpusReader.OpenParsed(a).Single().Error, Does.Contain("non-negative"));
        Assert.That(CorpusReader.OpenParsed(b).Single().Error, Does.Contain("larger than any token id"));
        // The token reader used by pack says the same without JSON.
        MdsShard shard = MdsDataset.Open(b).LoadShard(0);
        MdsValue.TryReadArray(shard.Column(0, 0), shard.Info.Columns[0].Encoding, out MdsArray arr);
        Assert.That(MdsValue.TryReadTokens(shard.Column(0, 0), arr, new int[1]), Does.Contain("3000000000"));
    }

    [TestCase("{\"shards\": [], \"version\": 3}", "version")]
    [TestCase("[1, 2]", "expected a JSON object")]
    [TestCase("{\"version\": 2}", "shards")]
    [TestCase("{\"shards\": [{\"format\": \"json\"}], \"version\": 2}", "'json' format")]
    [TestCase("{\"shards\": [", "not valid JSON")]
    public void BadIndex_IsOneClearLine(string index, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("index.json"), index);
        var e = Assert.Throws<CorpusFormatException>(() => MdsDataset.Open(dir.Path))!;
        Assert.That(e.Message, Does.Contain(expected));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [TestCase("\"column_encodings\": [\"str\", \"ndarray:uint32\", \"int32\"]", "\"column_encodings\": [\"str\", \"ndarray:uint99\", \"int32\"]", "element type 'uint99'")]
    [TestCase("\"column_encodings\": [\"str\", \"ndarray:uint32\", \"int32\"]", "\"column_encodings\": [\"str\", \"tensor\", \"int32\"]", "unknown column encoding 'tensor'")]
    [TestCase("\"column_sizes\": [null, null, 4]", "\"column_sizes\": [null, null, 8]", "encoding 'int32' has size 4")]
    [TestCase("\"compression\": null", "\"compression\": \"gz\"", "compressed with 'gz'")]
    [TestCase("\"basename\": \"shard.00000.mds\"", "\"basename\": \"../shard.00000.mds\"", "not a relative path inside")]
    [TestCase("\"samples\": 2", "\"samples\": 3", "says it holds 2 samples but index.json says 3")]
    [TestCase("\"samples\": 2", "\"samples\": -1", "outside 0..")]
    public void LyingIndex_IsCaughtWithOneLine(string from, string to, string expected)
    {
        using var dir = new TempDir();
        string ds = Write(dir, ProLong, [ProLongSample("a", 1), ProLongSample("b", 2)]);
        string index = File.ReadAllText(Path.Combine(ds, "index.json"));
        Assert.That(index, Does.Contain(from));
        File.WriteAllText(Path.Combine(ds, "index.json"), index.Replace(from, to));
        var e = Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds).ToList())!;
        Assert.That(e.Message, Does.Contain(expected));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void DamagedShards_AreNamedWithWhatToDo()
    {
        using var dir = new TempDir();
        string ds = Write(dir, ProLong, [ProLongSample("a", 1, 2), ProLongSample("b", 3)]);
        string shard = Path.Combine(ds, "shard.00000.mds");
        byte[] good = File.ReadAllBytes(shard);

        File.WriteAllBytes(shard, good[..^3]);
        Assert.That(Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds).ToList())!.Message,
            Does.Contain($"is {good.Length - 3} bytes but index.json says {good.Length}").And.Contain("re-download"));

        byte[] flipped = (byte[])good.Clone();
        flipped[^1] ^= 0x40;
        File.WriteAllBytes(shard, flipped);
        Assert.That(Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds).ToList())!.Message, Does.Contain("does not match its hash: its sha1"));

        File.Delete(shard);
        Assert.That(Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds).ToList())!.Message, Does.Contain("missing"));

        File.Delete(Path.Combine(ds, "index.json"));
        Assert.That(Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds))!.Message, Does.Contain("without index.json"));
    }

    [Test]
    public void ZstdShard_WhoseIndexOverstatesItsSize_FailsWithoutAllocatingTheClaim()
    {
        using var dir = new TempDir();
        string ds = Write(dir, ProLong, [ProLongSample("a", 1, 2), ProLongSample("b", 3)], zstd: true);
        string index = File.ReadAllText(Path.Combine(ds, "index.json"));
        string lying = System.Text.RegularExpressions.Regex.Replace(index, "(\"shard.00000.mds\",\n \"bytes\": )[0-9]+", "${1}2000000000");
        Assert.That(lying, Is.Not.EqualTo(index));
        File.WriteAllText(Path.Combine(ds, "index.json"), lying.Replace("\"sha1\"", "\"unchecked\""));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds).ToList())!;
        Assert.That(e.Message, Does.Contain("but index.json says 2000000000"));
        Assert.That(GC.GetTotalAllocatedBytes(precise: true) - before, Is.LessThan(64L << 20));
    }

    [Test]
    public void LyingOffsetsAndSizes_WithoutHashes_AreCaughtByTheLayoutChecks()
    {
        using var dir = new TempDir();
        string ds = Path.Combine(dir.Path, "ds");
        Directory.CreateDirectory(ds);
        byte[] s0 = ProLongSample("a", 1, 2), s1 = ProLongSample("b", 3);
        void WithShard(byte[] raw)
        {
            File.WriteAllBytes(Path.Combine(ds, "shard.00000.mds"), raw);
            string entry = ShardEntry(ProLong, 2, "shard.00000.mds", raw).Replace("\"hashes\": {\"sha1\"", "\"hashes\": {\"unchecked\"");
            File.WriteAllText(Path.Combine(ds, "index.json"), Index(entry));
        }
        string Error() => Assert.Throws<CorpusFormatException>(() => CorpusReader.Open(ds).ToList())!.Message;

        byte[] raw = Shard([s0, s1]);
        byte[] badOffset = (byte[])raw.Clone();
        badOffset[8] = 0xff; // sample 0's end (and sample 1's start) far past the file
        WithShard(badOffset);
        Assert.That(Error(), Does.Contain("sample 0 runs from byte").And.Contain("wrong offset table"));

        byte[] badSize = Shard([Sample(ProLong, [Str("a"), UInt32Array(1, 2), Int32(2)]).Select((b, k) => k == 0 ? (byte)99 : b).ToArray(), s1]);
        WithShard(badSize);
        Assert.That(Error(), Does.Contain("column 'domain' claims 99 bytes"));

        byte[] badShape = Shard([Sample(ProLong, [Str("a"), [0x04, 3, 1, 0, 0, 0, 2, 0, 0, 0], Int32(2)]), s1]); // shape 3, 2 elements
        WithShard(badShape);
        Assert.That(Error(), Does.Contain("needs 12"));

        WithShard(Shard([s0, s1]));
        Assert.That(CorpusReader.Open(ds).Count(), Is.EqualTo(2), "the untouched shard reads");
    }

    [Test]
    public void PositionReportsTheFractionOfSamplesRead()
    {
        using var dir = new TempDir();
        string ds = Write(dir, ProLong, [ProLongSample("a", 1), ProLongSample("b", 2), ProLongSample("c", 3), ProLongSample("d", 4)]);
        var position = new CorpusPosition();
        using var e = CorpusReader.Open(ds, position: position).GetEnumerator();
        e.MoveNext();
        Assert.That(position.Fraction, Is.EqualTo(0.0).Or.EqualTo(0.25));
        e.MoveNext();
        e.MoveNext();
        Assert.That(position.Fraction, Is.EqualTo(0.5).Or.EqualTo(0.75));
    }
}
