using System.IO.Compression;
using System.Text;
using LongDep.Core.Corpus;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests;

/// <summary>
/// Damaged compressed input, the settings line, byte-bounded read-ahead and the detail file kept in step: the pipeline
/// with a fake probe over real files.
/// </summary>
public class DamagedInputTests
{
    private sealed class FakeProbe(Action? onMeasure = null) : IProLongProbe
    {
        public ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken ct = default)
        {
            onMeasure?.Invoke();
            double[] single = chunks.Select(c => 2.0 + c.Sum() % 7).ToArray();
            double[] pair = pairs.Select(p => single[p.I] * (0.5 + (chunks[p.J][0] % 5) / 10.0)).ToArray();
            return new ProLongMeasurement(single, pairs, pair);
        }
        public void Dispose() { }
    }

    private static readonly ScoreSettings Settings = new() { Method = ScoreMethod.ProLong, Window = 64, Chunk = 4, Pairs = 6 };
    private static readonly ScoreRun.Tokenizer Tok = new(text => text.Select(ch => (int)ch % 50).ToArray(), 50);
    private static readonly ScoreHeader Header = new([new("method", "prolong"), new("window", "64")]);

    private static IScoringWorker[] Workers(Action? onMeasure = null) =>
        [new ScoringWorker("fake", new RecordScorer(Settings, null, new FakeProbe(onMeasure)))];

    /// <summary>JSON lines of <paramref name="records"/> records, 40..200 letters of text each.</summary>
    internal static byte[][] Lines(int records, int seed = 3, int minLetters = 40, int maxLetters = 200)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, records).Select(i =>
        {
            string text = new(Enumerable.Range(0, rng.Next(minLetters, maxLetters)).Select(_ => (char)('a' + rng.Next(26))).ToArray());
            return Encoding.UTF8.GetBytes($"{{\"id\":\"r{i}\",\"text\":\"{text}\"}}\n");
        }).ToArray();
    }

    /// <summary>A .jsonl.zst of one checked frame per <paramref name="perFrame"/> lines; the compressed offset where each frame starts.</summary>
    internal static (byte[] File, List<long> FrameStarts) Zstd(byte[][] lines, int perFrame)
    {
        var file = new MemoryStream();
        var starts = new List<long>();
        using var c = new ZstdSharp.Compressor(3);
        c.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        for (int k = 0; k < lines.Length; k += perFrame)
        {
            starts.Add(file.Length);
            byte[] chunk = lines.Skip(k).Take(perFrame).SelectMany(l => l).ToArray();
            file.Write(c.Wrap(chunk));
        }
        return (file.ToArray(), starts);
    }

    internal static byte[] Gzip(byte[][] lines)
    {
        var file = new MemoryStream();
        using (var gz = new GZipStream(file, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(lines.SelectMany(l => l).ToArray());
        return file.ToArray();
    }

    private static RunSummary Run(string input, string output, IDetailSink? detail = null, ScoreHeader? header = null, long maxBytes = ScoreRunOptions.DefaultMaxInFlightBytes,
        Action? onMeasure = null) =>
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output, Header = header ?? Header, MaxInFlightBytes = maxBytes, FlushEvery = 1 },
            Settings, Tok, Workers(onMeasure), detail);

    private static string[] Records(string output) => File.ReadAllLines(output).Where(l => !l.StartsWith("{\"longdep\"", StringComparison.Ordinal)).ToArray();

    [Test]
    public void Zstd_DamagedFrame_KeepsTheFramesBefore_NothingAfter_AndTheRepairedRerunIsByteIdentical()
    {
        using var dir = new TempDir();
        byte[][] lines = Lines(30);
        var (good, starts) = Zstd(lines, perFrame: 5);
        string clean = dir.File("clean.jsonl.zst"), cleanOut = dir.File("clean.out");
        File.WriteAllBytes(clean, good);
        Run(clean, cleanOut);
        byte[] expected = File.ReadAllBytes(cleanOut);
        string[] expectedRecords = Records(cleanOut);
        Assert.That(expectedRecords, Has.Length.EqualTo(30));

        // A byte flipped inside frame 3 (records 15..19): frames 0..2 kept, nothing from 3 on, even though frames 4 and 5 are intact.
        byte[] bad = (byte[])good.Clone();
        bad[(int)(starts[3] + starts[4]) / 2] ^= 0x20;
        string input = dir.File("c.jsonl.zst"), output = dir.File("c.out");
        File.WriteAllBytes(input, bad);
        var e = Assert.Throws<ScoreRunException>(() => Run(input, output))!;
        Assert.That(e.Message, Does.Contain("c.jsonl.zst").And.Contain("zstd frame 3").And.Contain("last good record: index 14"));
        Assert.That(Records(output), Is.EqualTo(expectedRecords[..15]), "every record of the good frames, identical; none of the damaged one");

        File.WriteAllBytes(input, good); // repaired
        Run(input, output);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(expected));
    }

    [Test]
    public void Zstd_Truncated_KeepsEveryRecordDecodedWholeBeforeTheCut()
    {
        using var dir = new TempDir();
        byte[][] lines = Lines(20, minLetters: 20_000, maxLetters: 40_000); // several 128 KiB blocks
        var (good, starts) = Zstd(lines, perFrame: 20); // one frame: the cut is inside it
        string clean = dir.File("clean.jsonl.zst"), cleanOut = dir.File("clean.out");
        File.WriteAllBytes(clean, good);
        Run(clean, cleanOut);
        string[] expectedRecords = Records(cleanOut);

        string input = dir.File("t.jsonl.zst"), output = dir.File("t.out");
        File.WriteAllBytes(input, good[..(good.Length * 2 / 3)]);
        var e = Assert.Throws<ScoreRunException>(() => Run(input, output))!;
        Assert.That(e.Message, Does.Contain("t.jsonl.zst").And.Contain("truncated"));
        string[] kept = Records(output);
        Assert.That(kept.Length, Is.GreaterThan(0).And.LessThan(20));
        Assert.That(kept, Is.EqualTo(expectedRecords[..kept.Length]));
        Assert.That(e.Message, Does.Contain($"last good record: index {kept.Length - 1}"));
        Assert.That(starts, Has.Count.EqualTo(1));

        File.WriteAllBytes(input, good);
        Run(input, output);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(cleanOut)));
    }

    [Test]
    public void Gzip_Truncated_KeepsThePrefix_Corrupt_KeepsNothing_RepairedRerunsAreByteIdentical()
    {
        using var dir = new TempDir();
        byte[][] lines = Lines(25, minLetters: 10_000, maxLetters: 30_000);
        byte[] good = Gzip(lines);
        string clean = dir.File("clean.jsonl.gz"), cleanOut = dir.File("clean.out");
        File.WriteAllBytes(clean, good);
        Run(clean, cleanOut);
        string[] expectedRecords = Records(cleanOut);

        string input = dir.File("g.jsonl.gz"), output = dir.File("g.out");
        File.WriteAllBytes(input, good[..(good.Length / 2)]);
        var e = Assert.Throws<ScoreRunException>(() => Run(input, output))!;
        Assert.That(e.Message, Does.Contain("g.jsonl.gz").And.Contain("truncated"));
        string[] kept = Records(output);
        Assert.That(kept.Length, Is.GreaterThan(0).And.LessThan(25));
        Assert.That(kept, Is.EqualTo(expectedRecords[..kept.Length]));
        File.WriteAllBytes(input, good);
        Run(input, output);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(cleanOut)));

        // A flipped byte: the CRC at the member's end is the only check, so no record of the member is written as scored.
        string corrupt = dir.File("x.jsonl.gz"), corruptOut = dir.File("x.out");
        byte[] bad = (byte[])good.Clone();
        bad[good.Length / 2] ^= 0x01;
        File.WriteAllBytes(corrupt, bad);
        e = Assert.Throws<ScoreRunException>(() => Run(corrupt, corruptOut))!;
        Assert.That(e.Message, Does.Contain("x.jsonl.gz").And.Contain("gzip"));
        Assert.That(Records(corruptOut), Is.Empty);
        File.WriteAllBytes(corrupt, good);
        Run(corrupt, corruptOut);
        Assert.That(File.ReadAllBytes(corruptOut), Is.EqualTo(File.ReadAllBytes(cleanOut)));
    }

    [Test]
    public void Jsonl_CutInsideItsLastLine_KeepsTheRecordsBefore_AndTheRepairedRerunIsByteIdentical()
    {
        using var dir = new TempDir();
        byte[] good = Lines(12).SelectMany(l => l).ToArray();
        string clean = dir.File("clean.jsonl"), cleanOut = dir.File("clean.out");
        File.WriteAllBytes(clean, good);
        Run(clean, cleanOut);
        string[] expectedRecords = Records(cleanOut);

        string input = dir.File("j.jsonl"), output = dir.File("j.out");
        int cut = good.Length - 30; // inside the last line
        File.WriteAllBytes(input, good[..cut]);
        var e = Assert.Throws<ScoreRunException>(() => Run(input, output))!;
        Assert.That(e.Message, Does.Contain("j.jsonl").And.Contain("last good record: index 10"));
        Assert.That(Records(output), Is.EqualTo(expectedRecords[..11]));
        File.WriteAllBytes(input, good);
        Run(input, output);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(File.ReadAllBytes(cleanOut)));
    }

    [Test]
    public void Resume_UnderOtherSettings_IsRefusedListingWhatDiffers()
    {
        using var dir = new TempDir();
        string input = dir.File("in.jsonl"), output = dir.File("o.jsonl");
        File.WriteAllBytes(input, Lines(6).SelectMany(l => l).ToArray());
        Run(input, output);
        byte[] before = File.ReadAllBytes(output);
        Assert.That(File.ReadLines(output).First(), Does.StartWith("{\"longdep\":\"scores\",\"version\":1,\"fingerprint\":\"" + Header.Fingerprint + "\""));

        var other = new ScoreHeader([new("method", "prolong"), new("window", "128")]);
        var e = Assert.Throws<ScoreRunException>(() => Run(input, output, header: other))!;
        Assert.That(e.Message, Does.Contain("window: 64 in the file, 128 now").And.Contain("--overwrite"));
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(before), "nothing written");

        // Readers skip the settings line.
        Assert.That(ScoreReader.Read(output).Select(r => r.Index), Is.EqualTo(Enumerable.Range(0, 6).Select(i => (long)i)));
        Assert.That(ScoreReader.ReadHeader(output)!.Fingerprint, Is.EqualTo(Header.Fingerprint));
    }

    [Test]
    public void ReadAhead_IsBoundedInBytes_NotOnlyInRecords()
    {
        using var dir = new TempDir();
        const int lineBytes = 400_000, records = 14;
        var sb = new StringBuilder();
        var rng = new Random(1);
        for (int i = 0; i < records; i++)
            sb.Append("{\"text\":\"").Append(new string(Enumerable.Range(0, lineBytes).Select(_ => (char)('a' + rng.Next(26))).ToArray())).Append("\"}\n");
        string input = dir.File("big.jsonl"), output = dir.File("big.out");
        File.WriteAllText(input, sb.ToString());
        long tokenized = 0, maxAhead = 0, scored = 0;
        var tok = new ScoreRun.Tokenizer(text =>
        {
            Interlocked.Increment(ref tokenized);
            return text.Take(64).Select(ch => (int)ch % 50).ToArray();
        }, 50);
        var worker = new ScoringWorker("fake", new RecordScorer(Settings, null, new FakeProbe(() =>
        {
            long ahead = Interlocked.Read(ref tokenized) - Interlocked.Increment(ref scored) + 1;
            long seen;
            do seen = Interlocked.Read(ref maxAhead); while (ahead > seen && Interlocked.CompareExchange(ref maxAhead, ahead, seen) != seen);
            Thread.Sleep(5);
        })));
        ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output, MaxInFlight = 32, MaxInFlightBytes = 3 * lineBytes }, Settings, tok, [worker]);
        Assert.That(Records(output), Has.Length.EqualTo(records));
        Assert.That(maxAhead, Is.LessThanOrEqualTo(3), "records read ahead of the one being scored stay within the byte bound (3 lines), not the 32-record bound");
        Assert.That(maxAhead, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public void DetailFile_MissingEntries_AreRewrittenOnResume_AndScoresAreUntouched()
    {
        using var dir = new TempDir();
        string input = dir.File("in.jsonl"), output = dir.File("o.jsonl"), detail = dir.File("d.lddt");
        File.WriteAllBytes(input, Lines(8).SelectMany(l => l).ToArray());
        using (var sink = new LongDep.Core.Detail.DetailWriter(detail, Settings, append: true, header: Header)) Run(input, output, sink);
        byte[] scores = File.ReadAllBytes(output);
        File.Delete(detail); // lost, or never written

        var notes = new List<string>();
        using (var sink = new LongDep.Core.Detail.DetailWriter(detail, Settings, append: true, header: Header))
            ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output, Header = Header, Log = notes.Add }, Settings, Tok, Workers(), sink);
        Assert.That(notes, Has.Count.EqualTo(1));
        Assert.That(notes[0], Does.Contain("lacks the entries of 8 record(s)"));
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(scores), "the score file is not rewritten");
        using (var reader = LongDep.Core.Detail.DetailReader.Open(detail))
        {
            Assert.That(reader.Latest().Keys.Order(), Is.EqualTo(Enumerable.Range(0, 8).Select(i => (long)i)));
            Assert.That(reader.Settings!.Fingerprint, Is.EqualTo(Header.Fingerprint));
            foreach (var r in ScoreReader.Read(output))
                Assert.That(reader.Latest()[r.Index].Score, Is.EqualTo(r.Score), $"record {r.Index}");
        }

        // A detail file of other settings is never appended to.
        var other = new ScoreHeader([new("method", "prolong"), new("window", "128")]);
        var e = Assert.Throws<CorpusFormatException>(() => new LongDep.Core.Detail.DetailWriter(detail, Settings, append: true, header: other))!;
        Assert.That(e.Message, Does.Contain("window: 64 in the file, 128 now"));
    }
}
