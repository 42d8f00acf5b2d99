using LongDep.Core.Detail;

namespace LongDep.Core.Tests.Detail;

/// <summary>The Table 2 protocol: per-sample exp(mean NLL of tokens 2..w), mean over samples, short samples skipped.</summary>
public class WindowedPerplexityTests
{
    /// <summary>NLL of token t = value[t]; records which lengths it was asked for.</summary>
    private sealed class TableNll(double[] values) : ISequenceNll
    {
        public List<int> Calls { get; } = [];
        public double[] TokenNll(ReadOnlySpan<int> tokens)
        {
            Calls.Add(tokens.Length);
            var nll = values[..tokens.Length];
            nll[0] = double.NaN;
            return nll;
        }
    }

    [Test]
    public void HandWorkedExample()
    {
        var ppl = new WindowedPerplexity([4, 2]);
        // Sample A, 5 tokens: nll of tokens 2..5 = 1, 2, 3, 4.
        var a = new TableNll([0, 1, 2, 3, 4]);
        // Sample B, 3 tokens: nll of tokens 2..3 = 0.5, 1.5 (reaches window 2 only).
        var b = new TableNll([0, 0.5, 1.5]);
        double[] pa = ppl.Add(new int[5], a);
        double[] pb = ppl.Add(new int[3], b);

        Assert.Multiple(() =>
        {
            Assert.That(ppl.Windows, Is.EqualTo(new[] { 2, 4 }));
            Assert.That(a.Calls, Is.EqualTo(new[] { 4 }), "one run over the largest window the sample reaches");
            Assert.That(b.Calls, Is.EqualTo(new[] { 2 }));
            Assert.That(pa[0], Is.EqualTo(Math.Exp(1.0)).Within(1e-15));              // w = 2: token 2 only
            Assert.That(pa[1], Is.EqualTo(Math.Exp((1.0 + 2 + 3) / 3)).Within(1e-15)); // w = 4: tokens 2..4
            Assert.That(pb[0], Is.EqualTo(Math.Exp(0.5)).Within(1e-15));
            Assert.That(double.IsNaN(pb[1]));
        });
        var results = ppl.Results();
        Assert.Multiple(() =>
        {
            Assert.That(results[0], Is.EqualTo(new WindowPerplexity(2, 2, 0, (Math.Exp(1.0) + Math.Exp(0.5)) / 2)));
            Assert.That(results[1].Samples, Is.EqualTo(1));
            Assert.That(results[1].Skipped, Is.EqualTo(1));
            Assert.That(results[1].MeanPerplexity, Is.EqualTo(Math.Exp(2.0)).Within(1e-15));
            Assert.That(ppl.SamplesSeen, Is.EqualTo(2));
        });
    }

    [Test]
    public void MeanOfPerplexities_IsNotExpOfMeanNll()
    {
        // Two samples with mean NLL 0 and 2: mean ppl = (1 + e^2) / 2, not e^1.
        var ppl = new WindowedPerplexity([3]);
        ppl.AddNll(3, [double.NaN, 0, 0]);
        ppl.AddNll(3, [double.NaN, 2, 2]);
        Assert.That(ppl.Results()[0].MeanPerplexity, Is.EqualTo((1 + Math.Exp(2)) / 2).Within(1e-14));
    }

    [Test]
    public void SampleShorterThanEveryWindow_IsSkippedEverywhereWithoutARun()
    {
        var ppl = new WindowedPerplexity([8, 16]);
        var model = new TableNll(new double[20]);
        ppl.Add(new int[7], model);
        Assert.That(model.Calls, Is.Empty);
        Assert.That(ppl.Results().Select(r => (r.Samples, r.Skipped)), Is.EqualTo(new[] { (0, 1), (0, 1) }));
        Assert.That(double.IsNaN(ppl.Results()[0].MeanPerplexity));
    }

    [Test]
    public void BadWindowsAndBadBackends_AreRefused()
    {
        Assert.Throws<ArgumentException>(() => new WindowedPerplexity([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WindowedPerplexity([1, 4]));
        Assert.Throws<ArgumentException>(() => new WindowedPerplexity([4, 4]));
        var ppl = new WindowedPerplexity([4]);
        Assert.Throws<InvalidOperationException>(() => ppl.Add(new int[6], new ShortBackend()));
    }

    private sealed class ShortBackend : ISequenceNll
    {
        public double[] TokenNll(ReadOnlySpan<int> tokens) => new double[tokens.Length - 1];
    }
}
