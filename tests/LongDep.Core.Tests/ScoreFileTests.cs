using System.Text;
using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Records;

namespace LongDep.Core.Tests;

public class ScoreFileTests
{
    private static ScoreRecord[] KnownRecords()
    {
        using var meta = JsonDocument.Parse("""{"pile_set_name": "ArXiv", "x": [1, 2.50]}""");
        return
        [
            new ScoreRecord
            {
                Index = 0, Id = "a-é", Method = "ladm", Status = ScoreStatus.Ok, Score = 0.1873, Tokens = 32768, Domain = "ArXiv",
                Layers = [0.1 + 0.2, 1e-5, -2.5], Meta = meta.RootElement.Clone(),
            },
            new ScoreRecord
            {
                Index = 1, Method = "prolong", Status = ScoreStatus.TooShort, Score = 3.0, Tokens = 100,
                PairsUsed = 0, Chunks = 1, Error = "fewer than two chunks",
            },
            new ScoreRecord
            {
                Index = 2, Id = "q\"<", Method = "prolong", Status = ScoreStatus.Ok, Score = 12.0, Tokens = 2048, Domain = "Github",
                PairsUsed = 28, Chunks = 8, Error = "not written for ok records",
            },
            new ScoreRecord { Index = 3, Method = "ladm", Status = ScoreStatus.BadRecord, Error = "the line is not valid JSON" },
            new ScoreRecord { Index = 4, Method = "ladm", Status = ScoreStatus.NumericError, Tokens = 5000, Layers = [double.NaN, 0.5], Error = "NaN in CDS" },
        ];
    }

    private const string Expected =
        """{"index":0,"id":"a-é","method":"ladm","status":"ok","score":0.1873,"tokens":32768,"domain":"ArXiv","layers":[0.30000000000000004,1E-05,-2.5],"meta":{"pile_set_name": "ArXiv", "x": [1, 2.50]}}""" + "\n" +
        """{"index":1,"id":null,"method":"prolong","status":"too_short","score":null,"tokens":100,"domain":null,"pairs_used":0,"chunks":1,"error":"fewer than two chunks"}""" + "\n" +
        """{"index":2,"id":"q\"<","method":"prolong","status":"ok","score":12,"tokens":2048,"domain":"Github","pairs_used":28,"chunks":8}""" + "\n" +
        """{"index":3,"id":null,"method":"ladm","status":"bad_record","score":null,"tokens":null,"domain":null,"error":"the line is not valid JSON"}""" + "\n" +
        """{"index":4,"id":null,"method":"ladm","status":"numeric_error","score":null,"tokens":5000,"domain":null,"layers":[null,0.5],"error":"NaN in CDS"}""" + "\n";

    [Test]
    public void Writer_Output_IsByteExact()
    {
        var stream = new MemoryStream();
        using (var writer = new ScoreWriter(stream, leaveOpen: true))
            foreach (ScoreRecord r in KnownRecords()) writer.Write(r);
        Assert.That(Encoding.UTF8.GetString(stream.ToArray()), Is.EqualTo(Expected));
    }

    [Test]
    public void Writer_OkWithoutFiniteScore_Throws()
    {
        using var writer = new ScoreWriter(new MemoryStream());
        Assert.Throws<ArgumentException>(() => writer.Write(new ScoreRecord { Index = 0, Method = "ladm", Status = ScoreStatus.Ok, Score = double.NaN }));
        Assert.Throws<ArgumentException>(() => writer.Write(new ScoreRecord { Index = 0, Method = "ladm", Status = ScoreStatus.Ok }));
    }

    [Test]
    public void Doubles_RoundTripExactly()
    {
        double[] values = [Math.PI, 1.0 / 3, 5e-324, double.MaxValue, -0.1, 123456789.123456789, 1e22];
        foreach (double v in values)
        {
            byte[] line = ScoreWriter.Format(new ScoreRecord { Index = 0, Method = "ladm", Status = ScoreStatus.Ok, Score = v });
            Assert.That(ScoreReader.Parse(line).Score, Is.EqualTo(v));
        }
    }

    [Test]
    public void Reader_ReadsBack_AndRewritingIsByteIdentical()
    {
        using var dir = new TempDir();
        string path = dir.File("scores.jsonl");
        File.WriteAllText(path, Expected);
        ScoreRecord[] read = ScoreReader.Read(path).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(read.Select(r => r.Index), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }));
            Assert.That(read[0].Score, Is.EqualTo(0.1873));
            Assert.That(read[0].Layers, Is.EqualTo(new[] { 0.1 + 0.2, 1e-5, -2.5 }));
            Assert.That(read[0].Id, Is.EqualTo("a-é"));
            Assert.That(read[1].Status, Is.EqualTo(ScoreStatus.TooShort));
            Assert.That(read[1].Score, Is.Null);
            Assert.That(read[2].PairsUsed, Is.EqualTo(28));
            Assert.That(read[3].Tokens, Is.Null);
            Assert.That(double.IsNaN(read[4].Layers![0]), Is.True);
        });

        string again = dir.File("again.jsonl");
        using (var writer = new ScoreWriter(again))
            foreach (ScoreRecord r in read) writer.Write(r);
        Assert.That(File.ReadAllText(again), Is.EqualTo(Expected));
    }

    [Test]
    public void Reader_MalformedLine_NamesTheLine()
    {
        using var dir = new TempDir();
        string path = dir.File("scores.jsonl");
        File.WriteAllText(path, Expected.Split('\n')[0] + "\n{\"index\": 1, \"method\": \"ladm\", \"status\": \"great\"}\n");
        var e = Assert.Throws<CorpusFormatException>(() => ScoreReader.Read(path).ToArray());
        Assert.That(e!.Message, Does.Contain("scores.jsonl line 2").And.Contain("great"));

        File.WriteAllText(path, "{\"index\": 1, \"status\": \"ok\"}\n");
        Assert.That(Assert.Throws<CorpusFormatException>(() => ScoreReader.Read(path).ToArray())!.Message, Does.Contain("'method'"));
    }

    [Test]
    public void Writer_FlushesEveryNRecords_AndAppends()
    {
        using var dir = new TempDir();
        string path = dir.File("scores.jsonl");
        ScoreRecord[] records = KnownRecords();
        using (var writer = new ScoreWriter(path, append: false, flushEvery: 3))
        {
            writer.Write(records[0]);
            writer.Write(records[1]);
            Assert.That(ReadShared(path), Is.Empty);
            writer.Write(records[2]);
            Assert.That(ReadShared(path).Split('\n'), Has.Length.EqualTo(4)); // 3 lines + trailing empty
            writer.Write(records[3]);
            writer.Flush();
            Assert.That(ReadShared(path).Split('\n'), Has.Length.EqualTo(5));
        }
        using (var writer = new ScoreWriter(path, append: true))
            writer.Write(records[4]);
        Assert.That(File.ReadAllText(path), Is.EqualTo(Expected));
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(stream).ReadToEnd();
    }

    [Test]
    public void TrimIncompleteTail_RemovesAPartialLastLine()
    {
        using var dir = new TempDir();
        string path = dir.File("scores.jsonl");
        File.WriteAllText(path, Expected + "{\"index\":5,\"id\":nu");
        Assert.That(ScoreReader.TrimIncompleteTail(path), Is.EqualTo(5));
        Assert.That(File.ReadAllText(path), Is.EqualTo(Expected));
        Assert.That(ScoreReader.TrimIncompleteTail(path), Is.EqualTo(5));
        Assert.That(File.ReadAllText(path), Is.EqualTo(Expected));
    }

    [Test]
    public void RunSummary_CountsByStatus_AndRates()
    {
        var summary = new RunSummary();
        foreach (ScoreRecord r in KnownRecords()) summary.Add(r);
        summary.Seconds = 2;
        Assert.Multiple(() =>
        {
            Assert.That(summary.Records, Is.EqualTo(5));
            Assert.That(summary.Count(ScoreStatus.Ok), Is.EqualTo(2));
            Assert.That(summary.Count(ScoreStatus.TooShort), Is.EqualTo(1));
            Assert.That(summary.Count(ScoreStatus.BadRecord), Is.EqualTo(1));
            Assert.That(summary.Count(ScoreStatus.NumericError), Is.EqualTo(1));
            Assert.That(summary.Tokens, Is.EqualTo(32768 + 2048));
            Assert.That(summary.RecordsPerSecond, Is.EqualTo(2.5));
            Assert.That(summary.TokensPerSecond, Is.EqualTo((32768 + 2048) / 2.0));
        });
    }
}
