using System.Numerics.Tensors;
using System.Text.Json;
using LongDep.Cli.Reports;
using LongDep.Models;
using LongDep.Models.Cpu;
using LongDep.Models.Gguf;
using LongDep.Models.Synthetic;
using NUnit.Framework;

namespace LongDep.Cli.Tests.Reports;

/// <summary><c>longdep ppl</c> against an independent computation from the forward's logits.</summary>
public class PplTests
{
    private TempDir _dir = null!;
    private string _model = "", _input = "";
    private string[] _texts = [];

    [OneTimeSetUp]
    public void MakeModelAndInput()
    {
        _dir = new TempDir();
        ModelConfig cfg = RandomModel.Shape("tiny");
        string[] words = SyntheticText.Words(150, seed: 4);
        _model = _dir.File("tiny.gguf");
        GgufModel.Save(_model, RandomModel.Create(cfg, seed: 21), TensorType.F32, SyntheticText.Vocabulary(cfg.VocabSize, words), "tiny-ppl");
        _texts = [.. new[] { 4, 12, 30, 60, 25 }.Select((n, i) => SyntheticText.Document(words, n, longRange: i % 2 == 0, seed: 100 + i))];
        _input = _dir.File("samples.jsonl");
        var lines = _texts.Select(t => JsonSerializer.Serialize(new { text = t })).ToList();
        lines.Insert(2, "{ this is not json");
        File.WriteAllLines(_input, lines);
    }

    [OneTimeTearDown]
    public void Clean() => _dir.Dispose();

    /// <summary>
    /// Per sample exp(mean NLL of tokens 2..w), the NLL by hand from the float32 logits of the first w tokens; mean over
    /// samples. <paramref name="floatExp"/>: exponentials in float32 then a float64 sum, the rounding CpuForward.TokenNll
    /// uses (agreement to 1e-9 checks the protocol exactly); otherwise everything in float64 (the exact value).
    /// </summary>
    private static (double Ppl, int Samples, int Skipped) Reference(LoadedModel model, IEnumerable<int[]> samples, int w, bool floatExp)
    {
        var forward = new CpuForward(model.Weights, 1, CpuMath.Fast);
        int vocab = model.Config.VocabSize, count = 0, skipped = 0;
        double sum = 0;
        var e = new float[vocab];
        foreach (int[] tokens in samples)
        {
            if (tokens.Length < w) { skipped++; continue; }
            float[] logits = forward.Logits(tokens.AsSpan(0, w));
            double nll = 0;
            for (int t = 1; t < w; t++)
            {
                ReadOnlySpan<float> row = logits.AsSpan((t - 1) * vocab, vocab);
                float max = float.NegativeInfinity;
                foreach (float v in row) max = Math.Max(max, v);
                double z = 0;
                if (floatExp)
                {
                    TensorPrimitives.Subtract(row, max, e);
                    TensorPrimitives.Exp(e, e);
                    foreach (float v in e) z += v;
                }
                else
                {
                    foreach (float v in row) z += Math.Exp((double)v - max);
                }
                nll += max + Math.Log(z) - row[tokens[t]];
            }
            sum += Math.Exp(nll / (w - 1));
            count++;
        }
        return (sum / count, count, skipped);
    }

    private static JsonElement[] RunJson(params string[] args)
    {
        var (code, output, _) = CliRunner.Run(args);
        Assert.That(code, Is.EqualTo(0));
        string json = args[Array.IndexOf(args, "--json") + 1];
        TestContext.Out.WriteLine(output);
        return JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("windows").EnumerateArray().ToArray();
    }

    [Test]
    public void Ppl_EqualsAnIndependentComputationFromTheLogits()
    {
        string json = _dir.File("ppl.json");
        JsonElement[] windows = RunJson("ppl", "--model", _model, "--input", _input, "--windows", "16,32,64", "--threads", "1", "--json", json);
        LoadedModel model = ModelLoader.Load(_model);
        int[][] samples = _texts.Select(t => model.Tokenizer!.Encode(t, addBos: false)).ToArray();
        TestContext.Out.WriteLine($"sample lengths: {string.Join(", ", samples.Select(s => s.Length))}");
        Assert.That(samples.Count(s => s.Length >= 64), Is.InRange(1, samples.Length - 1), "the samples straddle the largest window");

        Assert.That(windows.Select(w => w.GetProperty("window").GetInt32()), Is.EqualTo(new[] { 16, 32, 64 }));
        foreach (JsonElement w in windows)
        {
            int size = w.GetProperty("window").GetInt32();
            var (ppl, count, skipped) = Reference(model, samples, size, floatExp: true);
            double exact = Reference(model, samples, size, floatExp: false).Ppl;
            double got = w.GetProperty("ppl").GetDouble();
            Assert.Multiple(() =>
            {
                Assert.That(w.GetProperty("samples").GetInt32(), Is.EqualTo(count), $"samples at {size}");
                Assert.That(w.GetProperty("skipped").GetInt32(), Is.EqualTo(skipped), $"skipped at {size}");
                Assert.That(Math.Abs(got - ppl) / ppl, Is.LessThan(1e-9), $"window {size}: {got} vs {ppl}");
                Assert.That(Math.Abs(got - exact) / exact, Is.LessThan(1e-7), $"window {size} against float64 log-softmax: {got} vs {exact}");
                Assert.That(ppl, Is.GreaterThan(1.0));
            });
        }
    }

    [Test]
    public void AddBosAndMaxSamples_ChangeWhatIsScored()
    {
        string json = _dir.File("bos.json");
        var (code, output, _) = CliRunner.Run("ppl", "--model", _model, "--input", _input, "--windows", "16", "--add-bos", "--max-samples", "2", "--json", json);
        Assert.That(code, Is.EqualTo(0));
        LoadedModel model = ModelLoader.Load(_model);
        int bos = model.Tokenizer!.BosId!.Value;
        // The first two good records (the bad line after them is not reached), each with BOS in front.
        int[][] samples = _texts.Take(2).Select(t => model.Tokenizer.Encode(t, addBos: true)).ToArray();
        Assert.That(samples.All(s => s[0] == bos));
        var (ppl, count, _) = Reference(model, samples, 16, floatExp: true);
        JsonElement w = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("windows")[0];
        Assert.Multiple(() =>
        {
            Assert.That(w.GetProperty("samples").GetInt32() + w.GetProperty("skipped").GetInt32(), Is.EqualTo(2));
            Assert.That(w.GetProperty("samples").GetInt32(), Is.EqualTo(count));
            Assert.That(Math.Abs(w.GetProperty("ppl").GetDouble() - ppl) / ppl, Is.LessThan(1e-9));
            Assert.That(output, Does.Contain("2 samples read").And.Contain("BOS prepended"));
        });
    }

    [Test]
    public void Table_HasTheModelRowAndOneColumnPerWindow()
    {
        var (_, output, err) = CliRunner.Run("ppl", "--model", _model, "--input", _input, "--windows", "16,1K");
        string[] lines = output.Split('\n');
        Assert.Multiple(() =>
        {
            Assert.That(lines[0], Does.StartWith("Model").And.Contain("16").And.Contain("1K"));
            Assert.That(lines[1], Does.StartWith("tiny.gguf"));
            Assert.That(lines[1], Does.Contain("-"), "no sample reaches 1024 tokens");
            Assert.That(lines[2], Does.StartWith("samples"));
            Assert.That(lines[3], Does.StartWith("skipped (short)").And.Contain("5"));
            Assert.That(output, Does.Contain("1 bad records skipped"));
            Assert.That(output, Does.Contain("exp(mean NLL of tokens 2..w"));
            Assert.That(err, Does.Contain("[ppl] sample 5"));
        });
    }

    [TestCase("2K,4096", new[] { 2048, 4096 })]
    [TestCase(" 32768 , 2048 ", new[] { 2048, 32768 })]
    public void Windows_Parse(string text, int[] expected) => Assert.That(PplCommand.ParseWindows(text), Is.EqualTo(expected));

    [TestCase("2048,abc", "'abc' is not a window size")]
    [TestCase("1", "'1' is not a window size")]
    [TestCase("2K,2048", "2048 is given twice")]
    [TestCase(",", "no window given")]
    public void Windows_BadListsAreExplained(string text, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => PplCommand.ParseWindows(text))!;
        Assert.That(e.Message, Does.Contain(message));
    }

    [Test]
    public void UnknownDevice_IsRefusedClearly()
    {
        var e = Assert.Throws<ArgumentException>(() => CliRunner.Run("ppl", "--model", _model, "--input", _input, "--device", "cuda:0"))!;
        Assert.That(e.Message, Does.Contain("--device cuda:0 is not available"));
    }

    [Test]
    public void GpuBackends_PlugInThroughTheFactory()
    {
        // A backend that doubles the CPU NLLs: its perplexity is the square of the CPU one for a single sample.
        var root = new System.CommandLine.RootCommand("t")
        {
            PplCommand.Create((device, model) => device == "fake:0" ? new Doubled(new CpuSequenceNll(new CpuForward(model.Weights, 1, CpuMath.Fast))) : null),
        };
        string json = _dir.File("fake.json"), jsonCpu = _dir.File("cpu.json");
        var config = new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = new StringWriter(), Error = new StringWriter() };
        Assert.That(root.Parse(["ppl", "--model", _model, "--input", _input, "--windows", "16", "--max-samples", "1", "--device", "fake:0", "--json", json]).Invoke(config), Is.EqualTo(0));
        Assert.That(root.Parse(["ppl", "--model", _model, "--input", _input, "--windows", "16", "--max-samples", "1", "--json", jsonCpu]).Invoke(config), Is.EqualTo(0));
        double fake = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("windows")[0].GetProperty("ppl").GetDouble();
        double cpu = JsonDocument.Parse(File.ReadAllText(jsonCpu)).RootElement.GetProperty("windows")[0].GetProperty("ppl").GetDouble();
        Assert.That(fake, Is.EqualTo(cpu * cpu).Within(1e-9 * cpu * cpu));
    }

    private sealed class Doubled(LongDep.Core.Detail.ISequenceNll inner) : LongDep.Core.Detail.ISequenceNll
    {
        public double[] TokenNll(ReadOnlySpan<int> tokens) => inner.TokenNll(tokens).Select(v => 2 * v).ToArray();
    }
}
