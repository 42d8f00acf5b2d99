using System.Buffers.Binary;
using System.Text;
using LongDep.Core.Corpus;
using LongDep.Core.Detail;
using LongDep.Core.Pipeline;
using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;

namespace LongDep.Core.Tests.Detail;

/// <summary>The detail side file: round trips, the documented byte layout, resume repair and hostile input.</summary>
public class DetailFileTests
{
    [Test]
    public void Crc32_MatchesTheStandardCheckValue()
    {
        Assert.That(Crc32.Compute("123456789"u8), Is.EqualTo(0xCBF43926u));
        Assert.That(Crc32.Compute([]), Is.EqualTo(0u));
    }

    [Test]
    public void ProLong_RoundTripsSingleAndPairPerplexitiesAndDlt()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        ScoreOutcome outcome = DetailTestData.ProLong(7, n: 9, seed: 3);
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false)) w.Write(outcome);

        using var reader = DetailReader.Open(path);
        DetailEntry e = reader.Find(7)!;
        ProLongMeasurement m = outcome.ProLongMeasurement!;
        ProLongResult r = outcome.ProLong!;
        ProLongDetail d = e.ProLong!;
        Assert.Multiple(() =>
        {
            Assert.That(e.Method, Is.EqualTo("prolong"));
            Assert.That(e.Status, Is.EqualTo(ScoreStatus.Ok));
            Assert.That(e.Score, Is.EqualTo(r.Lds));
            Assert.That(e.Ladm, Is.Null);
            Assert.That(d.ChunkCount, Is.EqualTo(9));
            Assert.That(d.ChunkCountN, Is.EqualTo(1024 / 64));
            Assert.That(d.Threshold, Is.EqualTo(0.1));
            Assert.That(d.SinglePpl, Is.EqualTo(m.SinglePpl.Select(v => (float)v).ToArray()));
            Assert.That(d.Pairs, Is.EqualTo(m.Pairs.OrderBy(p => p.I).ThenBy(p => p.J).ToArray()));
        });
        for (int k = 0; k < d.Pairs.Length; k++)
        {
            int mk = m.Pairs.ToList().IndexOf(d.Pairs[k]);
            Assert.That(d.PairPpl[k], Is.EqualTo((float)m.PairPpl[mk]), $"pair_ppl of {d.Pairs[k]}");
            Assert.That(d.Dlt[k], Is.EqualTo((float)(m.SinglePpl[d.Pairs[k].I] - m.PairPpl[mk])), $"dlt of {d.Pairs[k]}");
        }

        // The dense matrix holds dlt where drawn and NaN elsewhere, like ProLongResult.DenseDlt's mask.
        double[,] dense = d.DenseDlt(out bool[,] drawn);
        double[,] expected = r.DenseDlt(out bool[,] expectedDrawn);
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 9; j++)
            {
                Assert.That(drawn[i, j], Is.EqualTo(expectedDrawn[i, j]), $"mask ({i}, {j})");
                if (drawn[i, j]) Assert.That(dense[i, j], Is.EqualTo(expected[i, j]).Within(1e-5 * Math.Abs(expected[i, j]) + 1e-6));
                else Assert.That(double.IsNaN(dense[i, j]), $"undrawn cell ({i}, {j}) should be NaN");
            }

        // The stored float32 values are enough to recompute LDS (to float32 precision).
        var again = ProLong.Lds(new ProLongMeasurement(d.SinglePpl.Select(v => (double)v).ToArray(), d.Pairs, d.PairPpl.Select(v => (double)v).ToArray()), d.ChunkCountN, d.Threshold);
        Assert.That(again.Lds, Is.EqualTo(r.Lds).Within(1e-4 * Math.Max(1, Math.Abs(r.Lds))));
    }

    [Test]
    public void Ladm_RoundTripsScheduleAndPfsAndPerLayerCds()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        ScoreOutcome outcome = DetailTestData.Ladm(3, t: 1500, layers: 3, seed: 5);
        using (var w = new DetailWriter(path, DetailTestData.LadmSettings, append: false)) w.Write(outcome);

        using var reader = DetailReader.Open(path);
        LadmDetail d = reader.Find(3)!.Ladm!;
        LadmMeasurement m = outcome.Ladm!;
        Assert.Multiple(() =>
        {
            Assert.That(d.T, Is.EqualTo(1500));
            Assert.That(d.Chunk, Is.EqualTo(32));
            Assert.That(d.Interval, Is.EqualTo(128));
            Assert.That(d.Stride, Is.EqualTo(128));
            Assert.That(d.Spans.Select(s => (s.Start, s.End)), Is.EqualTo(m.Schedule.Spans.Select(s => (s.Start, s.End))));
            Assert.That(d.Spans.Select(s => s.Intervals), Is.EqualTo(m.Schedule.Spans.Select(s => s.Intervals)));
            Assert.That(d.Layers, Is.EqualTo(3));
            Assert.That(d.CdsPerLayer, Is.EqualTo(outcome.Record.Layers));
        });
        for (int y = 0; y < 3; y++)
            for (int s = 0; s < d.Spans.Length; s++)
                Assert.That(d.Pfs[y][s], Is.EqualTo(m.Pfs[y][s].Select(v => (float)v).ToArray()), $"PFS layer {y} span {s}");

        // PfsMatrix: rows by start ascending, mean over layers (or one layer), NaN past a span's last interval.
        double[,] mean = d.PfsMatrix(null, out int[] starts);
        double[,] layer1 = d.PfsMatrix(1, out _);
        Assert.That(starts, Is.Ordered.Ascending);
        Assert.That(starts, Is.EquivalentTo(m.Schedule.Spans.Select(s => s.Start)));
        for (int r = 0; r < starts.Length; r++)
        {
            int s = m.Schedule.Spans.ToList().FindIndex(x => x.Start == starts[r]);
            for (int k = 0; k < mean.GetLength(1); k++)
            {
                if (k >= m.Schedule.Spans[s].Intervals.Length)
                {
                    Assert.That(double.IsNaN(mean[r, k]) && double.IsNaN(layer1[r, k]), $"cell ({r}, {k}) past the span's intervals");
                    continue;
                }
                double hand = ((double)(float)m.Pfs[0][s][k] + (float)m.Pfs[1][s][k] + (float)m.Pfs[2][s][k]) / 3;
                Assert.That(mean[r, k], Is.EqualTo(hand).Within(1e-12));
                Assert.That(layer1[r, k], Is.EqualTo((double)(float)m.Pfs[1][s][k]));
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => d.PfsMatrix(3, out _));
    }

    [Test]
    public void RecordsThatAreNotOk_HaveNoPayloadAndNoScore()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        using (var w = new DetailWriter(path, DetailTestData.LadmSettings, append: false))
        {
            w.Write(new ScoreOutcome(DetailTestData.Record(0, "ladm", ScoreStatus.BadRecord, null)));
            w.Write(new ScoreOutcome(DetailTestData.Record(1, "ladm", ScoreStatus.TooShort, null)));
            w.Write(DetailTestData.Ladm(2, 1500, 2, 1));
        }
        using var reader = DetailReader.Open(path);
        DetailEntryHeader[] all = reader.Entries().ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(all.Select(h => h.Index), Is.EqualTo(new long[] { 0, 1, 2 }));
            Assert.That(all.Select(h => h.Status), Is.EqualTo(new[] { ScoreStatus.BadRecord, ScoreStatus.TooShort, ScoreStatus.Ok }));
            Assert.That(all.Select(h => h.HasPayload), Is.EqualTo(new[] { false, false, true }));
            Assert.That(all[0].Score, Is.Null);
            Assert.That(reader.Find(1)!.Ladm, Is.Null);
            Assert.That(reader.Find(2)!.Ladm, Is.Not.Null);
            Assert.That(reader.Find(5), Is.Null);
        });
    }

    [Test]
    public void Frame_FollowsTheDocumentedByteLayout()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        ScoreOutcome outcome = DetailTestData.ProLong(42, 3, seed: 8);
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false)) w.Write(outcome);
        byte[] file = File.ReadAllBytes(path);

        Assert.That(Encoding.ASCII.GetString(file, 0, 4), Is.EqualTo("LDDT"));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(4)), Is.EqualTo(2));
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8)), Is.EqualTo(0), "no settings given: an empty settings block");
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(12)), Is.EqualTo(Crc32.Compute([])));
        file = file[16..]; // the frame follows the 16-byte header
        int bodyLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(file);
        Assert.That(file.Length, Is.EqualTo(4 + bodyLength + 4), "one frame: length, body, CRC");
        byte[] body = file.AsSpan(4, bodyLength).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(BinaryPrimitives.ReadInt64LittleEndian(body), Is.EqualTo(42));
            Assert.That(body[8], Is.EqualTo(2), "method byte: prolong");
            Assert.That(body[9], Is.EqualTo(0), "status byte: ok");
            Assert.That(BinaryPrimitives.ReadDoubleLittleEndian(body.AsSpan(12)), Is.EqualTo(outcome.Record.Score));
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(4 + bodyLength)), Is.EqualTo(Crc32.Compute(body)));
        });

        // Decompress by hand and parse the payload with the documented layout.
        int raw = (int)BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(20));
        byte[] payload = new ZstdSharp.Decompressor().Unwrap(body.AsSpan(24), raw).ToArray();
        var m = outcome.ProLongMeasurement!;
        var pairs = outcome.ProLong!.Pairs;
        int expectedRaw = 4 + 4 + 8 + 3 * 4 + 4 + pairs.Count * 16;
        Assert.That(payload.Length, Is.EqualTo(expectedRaw));
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(payload), Is.EqualTo(3));
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(4)), Is.EqualTo(16));
        Assert.That(BinaryPrimitives.ReadDoubleLittleEndian(payload.AsSpan(8)), Is.EqualTo(0.1));
        for (int i = 0; i < 3; i++)
            Assert.That(BinaryPrimitives.ReadSingleLittleEndian(payload.AsSpan(16 + 4 * i)), Is.EqualTo((float)m.SinglePpl[i]));
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(28)), Is.EqualTo(pairs.Count));
        for (int k = 0; k < pairs.Count; k++)
        {
            int at = 32 + 16 * k;
            Assert.That(BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(at)), Is.EqualTo(pairs[k].I));
            Assert.That(BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(at + 4)), Is.EqualTo(pairs[k].J));
        }
    }

    [Test]
    public void Reader_TakesTheLastEntryOfAnIndex()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false))
        {
            w.Write(DetailTestData.ProLong(0, 4, 1));
            w.Write(DetailTestData.ProLong(1, 4, 2));
        }
        ScoreOutcome rescored = DetailTestData.ProLong(1, 6, 9);
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: true))
        {
            Assert.That(w.EntriesOnOpen, Is.EqualTo(2));
            Assert.That(w.RepairedBytes, Is.EqualTo(0));
            w.Write(rescored);
        }
        using var reader = DetailReader.Open(path);
        Assert.That(reader.Entries().Select(h => h.Index), Is.EqualTo(new long[] { 0, 1, 1 }));
        DetailEntry e = reader.Find(1)!;
        Assert.That(e.Score, Is.EqualTo(rescored.Record.Score));
        Assert.That(e.ProLong!.ChunkCount, Is.EqualTo(6));
    }

    [Test]
    public void Overwrite_StartsANewFile()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false)) w.Write(DetailTestData.ProLong(0, 4, 1));
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false)) w.Write(DetailTestData.ProLong(5, 4, 1));
        using var reader = DetailReader.Open(path);
        Assert.That(reader.Entries().Select(h => h.Index), Is.EqualTo(new long[] { 5 }));
    }

    /// <summary>A run killed mid-write leaves any prefix of its last frame; every one is cut and the run appends.</summary>
    [Test]
    public void Resume_CutsEveryPossibleTornTailAndAppends()
    {
        using var dir = new TempDir();
        string full = dir.File("full.lddt");
        using (var w = new DetailWriter(full, DetailTestData.ProLongSettings, append: false))
            for (int i = 0; i < 3; i++) w.Write(DetailTestData.ProLong(i, 5, i));
        byte[] bytes = File.ReadAllBytes(full);
        long lastFrame;
        using (var reader = DetailReader.Open(full)) lastFrame = reader.Entries().Last().Offset;

        var cuts = new List<long> { 1, 2, 5, 8, 12, 20, 31, 32, 33 };
        long frameLength = bytes.Length - lastFrame;
        cuts.AddRange([frameLength / 2, frameLength - 5, frameLength - 4, frameLength - 1]);
        foreach (long keep in cuts)
        {
            string path = dir.File($"cut{keep}.lddt");
            File.WriteAllBytes(path, bytes.AsSpan(0, (int)(lastFrame + keep)).ToArray());
            using (var reader = DetailReader.Open(path))
            {
                Assert.That(reader.Entries().Select(h => h.Index), Is.EqualTo(new long[] { 0, 1 }), $"reader, {keep} bytes of the last frame");
                Assert.That(reader.TornTailBytes, Is.EqualTo(keep));
            }
            using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: true))
            {
                Assert.That(w.EntriesOnOpen, Is.EqualTo(2), $"{keep} bytes of the last frame");
                Assert.That(w.RepairedBytes, Is.EqualTo(keep));
                w.Write(DetailTestData.ProLong(2, 5, 2));
            }
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(bytes), $"after repair and rewrite ({keep} bytes kept)");
        }
    }

    [Test]
    public void Resume_DropsAFullLengthLastFrameThatFailsItsCrc()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false))
            for (int i = 0; i < 2; i++) w.Write(DetailTestData.ProLong(i, 5, i));
        byte[] bytes = File.ReadAllBytes(path);
        bytes[^10] ^= 0x5A; // inside the last frame's compressed payload
        File.WriteAllBytes(path, bytes);

        using (var reader = DetailReader.Open(path))
        {
            var last = reader.Entries().Last();
            var e = Assert.Throws<CorpusFormatException>(() => reader.Read(last))!;
            Assert.That(e.Message, Does.Contain("fails its check"));
        }
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: true))
        {
            Assert.That(w.EntriesOnOpen, Is.EqualTo(1));
            Assert.That(w.RepairedBytes, Is.GreaterThan(24));
        }
    }

    [Test]
    public void Resume_OfATornHeaderRewritesIt()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        File.WriteAllBytes(path, "LDD"u8.ToArray());
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings)) w.Write(DetailTestData.ProLong(0, 3, 1));
        using var reader = DetailReader.Open(path);
        Assert.That(reader.Entries().Count(), Is.EqualTo(1));
    }

    [Test]
    public void NotADetailFile_IsRefusedWithAClearMessage()
    {
        using var dir = new TempDir();
        string text = dir.File("scores.jsonl");
        File.WriteAllText(text, "{\"index\":0}\n");
        var e1 = Assert.Throws<CorpusFormatException>(() => DetailReader.Open(text))!;
        var e2 = Assert.Throws<CorpusFormatException>(() => new DetailWriter(text, DetailTestData.ProLongSettings).Dispose())!;
        Assert.That(e1.Message, Does.Contain("not a LongDep detail file").And.Contain("LDDT"));
        Assert.That(e2.Message, Does.Contain("not a LongDep detail file"));
        Assert.That(File.ReadAllText(text), Is.EqualTo("{\"index\":0}\n"), "the writer must not touch a file that is not its own");

        string tiny = dir.File("tiny");
        File.WriteAllBytes(tiny, "xy"u8.ToArray());
        Assert.Throws<CorpusFormatException>(() => DetailReader.Open(tiny));
        Assert.Throws<CorpusFormatException>(() => new DetailWriter(tiny, DetailTestData.ProLongSettings).Dispose());

        string future = dir.File("v9.lddt");
        File.WriteAllBytes(future, [.. "LDDT"u8, 9, 0, 0, 0]);
        Assert.That(Assert.Throws<CorpusFormatException>(() => DetailReader.Open(future))!.Message, Does.Contain("version 9"));
        Assert.Throws<FileNotFoundException>(() => DetailReader.Open(dir.File("none.lddt")));
    }

    [Test]
    public void DamageBeforeTheLastFrame_IsAnErrorNotASilentCut()
    {
        using var dir = new TempDir();
        string path = dir.File("d.lddt");
        using (var w = new DetailWriter(path, DetailTestData.ProLongSettings, append: false))
            for (int i = 0; i < 3; i++) w.Write(DetailTestData.ProLong(i, 5, i));
        byte[] bytes = File.ReadAllBytes(path);
        bytes[16 + 4 + 8] = 77; // method byte of the first frame (after the 16-byte header of a file without settings)
        File.WriteAllBytes(path, bytes);

        using (var reader = DetailReader.Open(path))
        {
            var e = Assert.Throws<CorpusFormatException>(() => reader.Entries().ToList())!;
            Assert.That(e.Message, Does.Contain("damaged at byte 16").And.Contain("method byte is 77"));
        }
        Assert.Throws<CorpusFormatException>(() => new DetailWriter(path, DetailTestData.ProLongSettings).Dispose());
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(bytes), "a damaged file is left as it is");
    }

    /// <summary>Frames built by hand with a good CRC but hostile counts: clear errors, no huge allocation.</summary>
    [TestCase("prolong", new[] { int.MaxValue, 16 }, "chunk count")]
    [TestCase("prolong", new[] { 1, 1 }, "N = W / l is 1")]
    [TestCase("ladm", new[] { 100, 32, 128, 128, 1 << 30 }, "span count")]
    [TestCase("ladm", new[] { 100, 32, 128, 128, 1, 10, 20, int.MaxValue }, "interval count")]
    [TestCase("ladm", new[] { 100, 32, 128, 128, 1, 50, 20, 0 }, "span 0 is [50, 20)")]
    [TestCase("ladm", new[] { 100, 32, 128, 128, 0, 1 << 20 }, "layer count")]
    [TestCase("ladm", new[] { 0, 32, 128, 128, 0 }, "expected positive values")]
    public void HostilePayloads_GiveCorpusFormatErrors(string method, int[] ints, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("h.lddt");
        byte[] payload = new byte[ints.Length * 4 + 8];
        for (int k = 0; k < ints.Length; k++) BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4 * k), ints[k]);
        WriteHandMadeFile(path, method, payload);

        using var reader = DetailReader.Open(path);
        DetailEntryHeader h = reader.Entries().Single();
        var e = Assert.Throws<CorpusFormatException>(() => reader.Read(h))!;
        Assert.That(e.Message, Does.Contain(expected).And.Contain("damaged"));
    }

    [Test]
    public void PayloadSizeThatDisagreesWithTheZstdFrame_IsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("h.lddt");
        WriteHandMadeFile(path, "prolong", new byte[40], declaredRaw: 4000);
        using var reader = DetailReader.Open(path);
        var e = Assert.Throws<CorpusFormatException>(() => reader.Read(reader.Entries().Single()))!;
        Assert.That(e.Message, Does.Contain("declares 4000 bytes"));
    }

    /// <summary>Random byte damage anywhere: reading either works or fails with CorpusFormatException, never anything else.</summary>
    [Test]
    public void RandomDamage_NeverCrashesTheReader()
    {
        using var dir = new TempDir();
        string good = dir.File("good.lddt");
        using (var w = new DetailWriter(good, DetailTestData.LadmSettings, append: false))
        {
            w.Write(DetailTestData.Ladm(0, 900, 2, 1));
            w.Write(new ScoreOutcome(DetailTestData.Record(1, "ladm", ScoreStatus.TooShort, null)));
            w.Write(DetailTestData.Ladm(2, 1100, 2, 2));
        }
        byte[] bytes = File.ReadAllBytes(good);
        var rng = new Random(17);
        string path = dir.File("bad.lddt");
        for (int trial = 0; trial < 300; trial++)
        {
            byte[] damaged = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++) damaged[8 + rng.Next(damaged.Length - 8)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) Array.Resize(ref damaged, 8 + rng.Next(damaged.Length - 8));
            File.WriteAllBytes(path, damaged);
            try
            {
                using var reader = DetailReader.Open(path);
                foreach (DetailEntryHeader h in reader.Entries()) reader.Read(h);
            }
            catch (CorpusFormatException)
            {
            }
        }
    }

    [Test]
    public void ScoreRun_WritesOneEntryPerOutputRecordInOutputOrder()
    {
        using var dir = new TempDir();
        var sb = new StringBuilder();
        for (int i = 0; i < 12; i++)
            sb.Append(i % 5 == 3 ? "oops\n" : $"{{\"text\":\"{new string((char)('a' + i), 20 + 7 * i)}\"}}\n");
        string input = dir.File("in.jsonl"), output = dir.File("out.jsonl"), detail = dir.File("out.lddt");
        File.WriteAllText(input, sb.ToString());
        var settings = new ScoreSettings { Method = ScoreMethod.ProLong, Window = 64, Chunk = 8, Pairs = 5 };
        var tok = new ScoreRun.Tokenizer(text => text.Select(c => (int)c % 40).ToArray(), 40);
        IScoringWorker[] workers = [new ScoringWorker("fake:0", new RecordScorer(settings, null, new PurePairProbe()))];
        using (var sink = new DetailWriter(detail, settings, append: false))
            ScoreRun.Execute(new ScoreRunOptions { InputPath = input, OutputPath = output }, settings, tok, workers, sink);

        ScoreRecord[] scores = ScoreReader.Read(output).ToArray();
        using var reader = DetailReader.Open(detail);
        DetailEntryHeader[] entries = reader.Entries().ToArray();
        Assert.That(entries.Select(e => e.Index), Is.EqualTo(scores.Select(s => s.Index)));
        Assert.That(entries.Select(e => e.Status), Is.EqualTo(scores.Select(s => s.Status)));
        Assert.That(entries.Select(e => e.Score), Is.EqualTo(scores.Select(s => s.Score)));
        Assert.That(scores.Count(s => s.Status == ScoreStatus.Ok), Is.GreaterThan(3));
        foreach (DetailEntryHeader h in entries.Where(h => h.Status == ScoreStatus.Ok))
        {
            ProLongDetail d = reader.Read(h).ProLong!;
            Assert.That(d.ChunkCount, Is.EqualTo(scores.Single(s => s.Index == h.Index).Chunks));
            Assert.That(d.ChunkCountN, Is.EqualTo(8));
        }
    }

    /// <summary>Perplexities that are a pure function of the chunk tokens.</summary>
    private sealed class PurePairProbe : IProLongProbe
    {
        public ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken ct = default)
        {
            double[] single = chunks.Select(c => 3.0 + c.Sum() % 11).ToArray();
            double[] pair = pairs.Select(p => single[p.I] * (0.4 + chunks[p.J][0] % 7 / 10.0)).ToArray();
            return new ProLongMeasurement(single, pairs, pair);
        }
        public void Dispose() { }
    }

    /// <summary>A detail file with one frame written from the documented layout (independently of DetailWriter).</summary>
    private static void WriteHandMadeFile(string path, string method, byte[] payload, int? declaredRaw = null)
    {
        byte[] compressed = new ZstdSharp.Compressor(3).Wrap(payload).ToArray();
        byte[] body = new byte[24 + compressed.Length];
        BinaryPrimitives.WriteInt64LittleEndian(body, 0);
        body[8] = method == "ladm" ? (byte)1 : (byte)2;
        body[9] = 0;
        BinaryPrimitives.WriteDoubleLittleEndian(body.AsSpan(12), 0.5);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(20), (uint)(declaredRaw ?? payload.Length));
        compressed.CopyTo(body, 24);
        using var f = File.Create(path);
        f.Write([.. "LDDT"u8, 1, 0, 0, 0]);
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(u32, (uint)body.Length);
        f.Write(u32);
        f.Write(body);
        BinaryPrimitives.WriteUInt32LittleEndian(u32, Crc32.Compute(body));
        f.Write(u32);
    }
}
