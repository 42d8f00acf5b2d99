namespace LongDep.Cli.Tests;

/// <summary>Bad options, files and models: a non-zero exit and one clear line on stderr.</summary>
public class ErrorTests
{
    [Test]
    public void BadCommandLines_ExitWithUsage_AndOneLine()
    {
        using var dir = new TempDir();
        foreach (var args in new[]
        {
            new[] { "score", "--model", "m", "--input", "i", "--output", "o" },                          // no --method
            new[] { "score", "--method", "bert", "--model", "m", "--input", "i", "--output", "o" },
            new[] { "select", "--scores", "s", "--input", "i", "--output", "o" },                        // no mode
            new[] { "nonsense" },
        })
        {
            var (code, err) = CliHarness.Run(args);
            Assert.That(code, Is.EqualTo(2), string.Join(' ', args));
            Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.StartWith("longdep: "));
        }
    }

    [Test]
    public void BadModelsInputsAndDevices_FailWithOneClearLine()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf"), corpus = dir.File("c.jsonl"), notModel = dir.File("x.gguf");
        var words = CliHarness.TinyModel(model);
        CliHarness.Corpus(corpus, words, 1, 50);
        File.WriteAllText(notModel, "hello, I am not a model");
        var cases = new (string[] Args, int Code, string Says)[]
        {
            (["inspect", dir.File("absent.gguf")], 1, "no such file"),
            (["inspect", notModel], 1, "GGUF"),
            (["inspect", dir.Path], 1, "not a Hugging Face checkpoint"),
            (["score", "--method", "ladm", "--model", notModel, "--input", corpus, "--output", dir.File("o.jsonl"), "--device", "cpu"], 1, "x.gguf"),
            (["score", "--method", "ladm", "--model", model, "--input", dir.File("absent.jsonl"), "--output", dir.File("o.jsonl"), "--device", "cpu"], 1, "absent.jsonl"),
            (["score", "--method", "ladm", "--model", model, "--input", corpus, "--output", dir.File("o.jsonl"), "--device", "tpu"], 2, "--device"),
            (["score", "--method", "prolong", "--model", model, "--input", corpus, "--output", dir.File("o.jsonl"), "--pairs", "-3"], 2, "--pairs"),
            (["score", "--method", "prolong", "--model", model, "--input", corpus, "--output", dir.File("o.jsonl"), "--shard", "4/3"], 2, "--shard"),
            (["score", "--method", "ladm", "--model", model, "--input", corpus, "--output", dir.File("no/such/dir/o.jsonl"), "--device", "cpu"], 1, "does not exist"),
        };
        foreach (var (args, expected, says) in cases)
        {
            var (code, err) = CliHarness.Run(args);
            string msg = string.Join(' ', args) + " → " + err;
            Assert.That(code, Is.EqualTo(expected), msg);
            Assert.That(err, Does.Contain(says), msg);
            Assert.That(err.TrimEnd().Split('\n').Count(l => l.StartsWith("longdep: ")), Is.EqualTo(1), msg);
        }
    }

    [Test]
    public void Inspect_DescribesTheModel()
    {
        using var dir = new TempDir();
        string model = dir.File("m.gguf");
        CliHarness.TinyModel(model);
        var (code, stdout, err) = CliHarness.RunChild("inspect", model, "--tensors");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(stdout, Does.Contain("llama").And.Contain("adjacent pairs").And.Contain("blk.1.ffn_down.weight").And.Contain("GiB"));
        Assert.That(stdout, Does.Contain("LADM at T=32,768").And.Contain("engine buffers"));
    }
}
