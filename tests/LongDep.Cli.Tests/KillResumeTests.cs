using System.Diagnostics;

namespace LongDep.Cli.Tests;

/// <summary>SIGKILL at random moments, then rerun: the output ends byte-identical to an uninterrupted run.</summary>
public class KillResumeTests
{
    [Test]
    public void KilledAtRandomPoints_ThenResumed_IsByteIdentical()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl");
        var words = CliHarness.TinyModel(model);
        CliHarness.Corpus(corpus, words, records: 24, wordsPerDoc: 600);
        string[] Args(string output) => ["score", "--method", "prolong", "--pairs", "all", "--model", model, "--input", corpus,
            "--output", output, "--device", "cpu", "--chunk", "16", "--window", "512", "--flush-every", "1", "--threads", "1"];

        var (code, _, err) = CliHarness.RunChild(Args(dir.File("full.jsonl")));
        Assert.That(code, Is.EqualTo(0), err);
        byte[] expected = File.ReadAllBytes(dir.File("full.jsonl"));

        string output = dir.File("killed.jsonl");
        var rng = new Random(17);
        int kills = 0;
        for (int attempt = 0; attempt < 8; attempt++)
        {
            using var p = CliHarness.Start(Args(output));
            _ = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            int delay = rng.Next(300, 2500);
            if (!p.WaitForExit(delay))
            {
                p.Kill(entireProcessTree: true);   // SIGKILL
                p.WaitForExit();
                kills++;
            }
        }
        Assert.That(kills, Is.GreaterThan(0), "no run was killed mid-way; the test proved nothing");
        (code, _, err) = CliHarness.RunChild(Args(output));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(expected));
    }
}
