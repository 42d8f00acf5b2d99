using LongDep.Models.Synthetic;
using NUnit.Framework;

namespace LongDep.Models.Tests;

public class FlopModelTests
{
    // TinyLlama-1.1B written out by hand: 22 layers, 2048 dims, 32 heads of 64, 4 KV heads, 5632 FF, 32000 tokens.
    private const double Layers = 22, Dim = 2048, QDim = 2048, KvDim = 256, Ff = 5632, Vocab = 32000;
    private const double PerLayer = Dim * QDim + 2 * Dim * KvDim + QDim * Dim + 3 * Dim * Ff + 2 * Dim; // q, k, v, o, mlp, norms
    private const double Body = Layers * PerLayer + Dim;                                                   // + final norm
    private const double Head = Vocab * Dim;

    private static ModelConfig TinyLlama => RandomModel.Shape("tinyllama");

    [Test]
    public void ParameterSplitMatchesTheHandCount()
    {
        Assert.Multiple(() =>
        {
            Assert.That(FlopModel.BodyParameters(TinyLlama), Is.EqualTo((long)Body));
            Assert.That(FlopModel.BodyAndHeadParameters(TinyLlama), Is.EqualTo((long)(Body + Head)));
            // The whole model is the body, the embedding and the head: 1.1B.
            Assert.That(TinyLlama.ParameterCount, Is.EqualTo((long)(Body + 2 * Head)));
        });
    }

    [Test]
    public void LadmPassOfTinyLlamaAt32KIsTheIssuesNumber()
    {
        const double t = 32768;
        double expected = 2 * Body * t + Layers * 2 * t * t * QDim;
        double flops = FlopModel.LadmPass(TinyLlama, 32768);
        Assert.Multiple(() =>
        {
            Assert.That(flops, Is.EqualTo(expected).Within(1e-9).Percent);
            Assert.That(flops, Is.EqualTo(1.60e14).Within(1).Percent);
            Assert.That(flops / 790e12, Is.EqualTo(0.20).Within(2).Percent, "seconds at 790 TFLOP/s");
        });
    }

    [Test]
    public void ProLongWithPrefixReuseIsTheIssuesNumber()
    {
        const double l = 128, chunks = 256, pairs = 5000;
        double linear = 2 * (Body + Head) * (pairs * l + chunks * l);
        double attention = Layers * (chunks * 2 * l * l * QDim + pairs * (4 * l * l * QDim + 2 * l * l * QDim));
        double flops = FlopModel.ProLongPrefixReuse(TinyLlama, 256, 5000, 128);
        Assert.Multiple(() =>
        {
            Assert.That(flops, Is.EqualTo(linear + attention).Within(1e-9).Percent);
            Assert.That(flops, Is.EqualTo(1.41e15).Within(1).Percent);
            Assert.That(flops / 790e12, Is.EqualTo(1.79).Within(1).Percent, "seconds at 790 TFLOP/s");
        });
    }

    [Test]
    public void ProLongTheReferenceWayIsTheIssuesNumberAndAboutTwiceTheWork()
    {
        const double l = 128, chunks = 256, pairs = 5000;
        double linear = 2 * (Body + Head) * (pairs * 2 * l + chunks * l);
        double attention = Layers * (chunks * 2 * l * l * QDim + pairs * 2 * (2 * l) * (2 * l) * QDim);
        double reference = FlopModel.ProLongReference(TinyLlama, 256, 5000, 128);
        double reuse = FlopModel.ProLongPrefixReuse(TinyLlama, 256, 5000, 128);
        Assert.Multiple(() =>
        {
            Assert.That(reference, Is.EqualTo(linear + attention).Within(1e-9).Percent);
            Assert.That(reference, Is.EqualTo(2.75e15).Within(1).Percent);
            Assert.That(reference / reuse, Is.InRange(1.9, 2.0));
        });
    }

    [Test]
    public void TiedHeadStillCountsOnceForProLong()
    {
        var untied = RandomModel.TinyConfig();
        var tied = RandomModel.TinyConfig(tied: true);
        Assert.Multiple(() =>
        {
            Assert.That(FlopModel.BodyParameters(tied), Is.EqualTo(FlopModel.BodyParameters(untied)));
            Assert.That(FlopModel.BodyAndHeadParameters(tied), Is.EqualTo(FlopModel.BodyAndHeadParameters(untied)));
            Assert.That(FlopModel.ProLongPrefixReuse(tied, 3, 2, 8), Is.EqualTo(FlopModel.ProLongPrefixReuse(untied, 3, 2, 8)));
        });
    }

    [Test]
    public void NothingToRunCostsNothingAndNegativeSizesAreRefused()
    {
        Assert.Multiple(() =>
        {
            Assert.That(FlopModel.LadmPass(TinyLlama, 0), Is.EqualTo(0));
            Assert.That(FlopModel.ProLongPrefixReuse(TinyLlama, 0, 0, 128), Is.EqualTo(0));
            Assert.Throws<ArgumentOutOfRangeException>(() => FlopModel.LadmPass(TinyLlama, -1));
            Assert.Throws<ArgumentOutOfRangeException>(() => FlopModel.ProLongReference(TinyLlama, 2, -1, 128));
        });
    }

    [Test]
    public void Opt350m_BodyIsTheLayersAndProjections_NotThePositionTable()
    {
        var c = LongDep.Models.Synthetic.RandomModel.Shape("opt-350m");
        // Per layer, by hand: q, k, v, o 4·1024² + their biases 4·1024, two LayerNorms 2·2·1024, fc1 and fc2
        // 2·1024·4096 + biases 4096 + 1024; then project_in and project_out 2·512·1024.
        long perLayer = 4L * 1024 * 1024 + 4 * 1024 + 4 * 1024 + 2L * 1024 * 4096 + 4096 + 1024;
        long body = 24 * perLayer + 2L * 512 * 1024;
        Assert.That(FlopModel.BodyParameters(c), Is.EqualTo(body));
        Assert.That(FlopModel.BodyAndHeadParameters(c), Is.EqualTo(body + 50272L * 512), "the tied head has rows of 512");
    }
}
