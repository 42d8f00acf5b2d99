using System.IO.Compression;
using System.Text;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace LongDep.Cli.Tests;

/// <summary>
/// Damaged corpora, at random: truncations and byte flips of .jsonl, .jsonl.gz, .jsonl.zst and .parquet files, each scored
/// by <c>longdep score</c>. Every run exits 0 or 1, says one line when it fails, writes every record it writes exactly as
/// a clean run does (nothing `ok` from damaged bytes where the format has a check: .gz, .zst), and keeps every record
/// that lies wholly before the damage (.jsonl: before the damaged byte; .zst: before the damaged frame).
/// </summary>
public class FuzzTests
{
    private const int Records = 24, PerFrame = 4, RowGroup = 6;

    private static string[] Score(string model, string input, string output) =>
        ["score", "--method", "prolong", "--pairs", "12", "--model", model, "--input", input, "--output", output, "--device", "cpu",
         "--chunk", "16", "--window", "128", "--threads", "1"];

    private static (string[] Texts, byte[][] Lines) Corpus(string[] words)
    {
        var texts = Enumerable.Range(0, Records).Select(i => Models.Synthetic.SyntheticText.Document(words, 40 + 7 * (i % 5), i % 2 == 0, i + 1)).ToArray();
        var lines = texts.Select((t, i) => Encoding.UTF8.GetBytes($"{{\"id\":\"d{i}\",\"text\":\"{t}\"}}\n")).ToArray();
        return (texts, lines);
    }

    private static byte[] Zstd(byte[][] lines, List<long> frameStarts)
    {
        var file = new MemoryStream();
        using var c = new ZstdSharp.Compressor(3);
        c.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        for (int k = 0; k < lines.Length; k += PerFrame)
        {
            frameStarts.Add(file.Length);
            file.Write(c.Wrap(lines.Skip(k).Take(PerFrame).SelectMany(l => l).ToArray()));
        }
        return file.ToArray();
    }

    private static byte[] Gzip(byte[][] lines)
    {
        var file = new MemoryStream();
        using (var gz = new GZipStream(file, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(lines.SelectMany(l => l).ToArray());
        return file.ToArray();
    }

    private static byte[] Parquet(string[] texts)
    {
        var schema = new ParquetSchema(new DataField<string>("id"), new DataField<string>("text"));
        var rows = texts.Select((t, i) => (IDictionary<string, object?>)new Dictionary<string, object?> { ["id"] = $"d{i}", ["text"] = t }).ToList();
        var file = new MemoryStream();
        ParquetSerializer.SerializeUntypedAsync(rows, schema, file, new ParquetOptions { RowGroupSize = RowGroup }).GetAwaiter().GetResult();
        return file.ToArray();
    }

    private static string[] RecordLines(string path) =>
        File.Exists(path) ? File.ReadAllLines(path).Where(l => !l.StartsWith("{\"longdep\"", StringComparison.Ordinal)).ToArray() : [];

    [Test]
    public void RandomTruncationsAndFlips_OfEveryFormat_KeepWhatPrecedesTheDamage_AndNothingFromIt()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf");
        var (texts, lines) = Corpus(CliHarness.TinyModel(model));
        var frames = new List<long>();
        var files = new (string Name, byte[] Bytes)[]
        {
            ("c.jsonl", lines.SelectMany(l => l).ToArray()),
            ("c.jsonl.gz", Gzip(lines)),
            ("c.jsonl.zst", Zstd(lines, frames)),
            ("c.parquet", Parquet(texts)),
        };
        var lineEnds = new long[Records];
        for (int i = 0, at = 0; i < Records; i++) lineEnds[i] = at += lines[i].Length;

        var rng = new Random(23);
        int cases = 0, failures = 0;
        foreach (var (name, good) in files)
        {
            string clean = dir.File(name + ".clean.out");
            File.WriteAllBytes(dir.File(name), good);
            var (code0, err0) = CliHarness.Run(Score(model, dir.File(name), clean));
            Assert.That(code0, Is.EqualTo(0), err0);
            string[] expected = RecordLines(clean);
            Assert.That(expected, Has.Length.EqualTo(Records));

            for (int trial = 0; trial < 6; trial++)
            {
                bool truncate = trial % 2 == 0;
                int at = rng.Next(1, good.Length - 1);
                byte[] bad = truncate ? good[..at] : (byte[])good.Clone();
                if (!truncate) bad[at] ^= (byte)(1 << rng.Next(8));
                string input = dir.File($"t{cases}-{name}"), output = dir.File($"t{cases}.out");
                File.WriteAllBytes(input, bad);
                var (code, err) = CliHarness.Run(Score(model, input, output));
                string what = $"{name} {(truncate ? "cut at" : "flip at")} {at} of {good.Length}";
                cases++;
                Assert.That(code, Is.AnyOf(0, 1), $"{what}: {err}");
                if (code == 1)
                {
                    failures++;
                    Assert.That(err.Split('\n').Count(l => l.StartsWith("longdep: ", StringComparison.Ordinal)), Is.EqualTo(1), $"{what}: {err}");
                    Assert.That(err, Does.Not.Contain("internal error"), what);
                }
                string[] written = RecordLines(output);
                // Records wholly before the damage, and whether every written record must match the clean run.
                int before;
                bool allChecked;
                switch (name)
                {
                    case "c.jsonl":
                        before = lineEnds.Count(end => end <= at);
                        allChecked = truncate;
                        break;
                    case "c.jsonl.zst":
                        before = frames.Count(start => start <= at) - 1 is var frame and >= 0 ? frame * PerFrame : 0;
                        allChecked = true;
                        break;
                    case "c.jsonl.gz":
                        before = 0; // a gzip member is checked as a whole
                        allChecked = true;
                        break;
                    default:
                        before = 0;
                        allChecked = truncate;
                        break;
                }
                Assert.That(written.Length, Is.GreaterThanOrEqualTo(Math.Min(before, Records)), $"{what}: every record before the damage is kept");
                int check = allChecked ? written.Length : Math.Min(before, written.Length);
                for (int k = 0; k < check; k++)
                    Assert.That(written[k], Is.EqualTo(expected[k]), $"{what}: record {k}");
            }

            // The repaired file resumes the last damaged run's output to a byte-identical result.
            string last = dir.File($"t{cases - 1}.out"), repaired = dir.File($"t{cases - 1}-{name}");
            if (File.Exists(last))
            {
                File.WriteAllBytes(repaired, good);
                var (code, err) = CliHarness.Run(Score(model, repaired, last));
                if (name is "c.jsonl.gz" or "c.jsonl.zst" || code == 0)
                {
                    Assert.That(code, Is.EqualTo(0), $"{name} repaired: {err}");
                    Assert.That(File.ReadAllBytes(last), Is.EqualTo(File.ReadAllBytes(clean)), $"{name} repaired");
                }
            }
        }
        Assert.That(failures, Is.GreaterThan(cases / 3), "most damage is detected");
    }
}
