using LongDep.Core.Probes;
using LongDep.Models.Cpu;
using LongDep.Models.Gguf;
using LongDep.Models.HuggingFace;
using LongDep.Models.Synthetic;
using LongDep.Models.Tests.HuggingFace;
using NUnit.Framework;

namespace LongDep.Models.Tests.Cpu;

/// <summary>
/// Every model family the engine reads, on the CPU: the forward against the float64 reference written from the
/// published architectures, the KV-cache reuse ProLong relies on, both file formats, and LADM's probe with each
/// family's attention (scale, soft-cap, sliding window).
/// </summary>
[TestFixture]
public class FamilyTests
{
    /// <summary>Tiny shapes of every family, some with their features tightened so a short sequence exercises them.</summary>
    private static IEnumerable<TestCaseData> Families()
    {
        TestCaseData C(string name, Func<ModelConfig, ModelConfig>? change = null) =>
            new TestCaseData(name, change ?? (c => c)).SetArgDisplayNames(name);
        yield return C("tiny");
        yield return C("tiny-llama3");
        yield return C("tiny-mistral");
        yield return C("tiny-qwen2");
        yield return C("tiny-qwen3");
        yield return C("tiny-gemma2");
        yield return C("tiny-gemma3");
        yield return C("tiny-phi3", c => c with { SlidingWindow = 24 });
        yield return C("opt-tiny");
        yield return C("opt-tiny", c => c with { NormPlacement = NormPlacement.Pre, FinalNorm = true, EmbedDim = null })
            .SetArgDisplayNames("opt-tiny pre-norm");
        yield return C("tiny", c => c with
        {
            RopeScaling = new RopeScaling { Type = RopeScalingType.Dynamic, Factor = 2, OriginalContext = 40 },
        }).SetArgDisplayNames("tiny dynamic-ntk");
        yield return C("tiny", c => c with { RopeScaling = new RopeScaling { Type = RopeScalingType.Linear, Factor = 4 } })
            .SetArgDisplayNames("tiny linear");
        yield return C("tiny-phi3", c => c with { RopeScaling = c.RopeScaling with { OriginalContext = 40 } })
            .SetArgDisplayNames("tiny-phi3 long factors");
    }

    private static ModelWeights Weights(string shape, Func<ModelConfig, ModelConfig> change, long seed = 7)
    {
        var cfg = change(RandomModel.Shape(shape, vocabSize: 97));
        if (cfg.Positions == PositionKind.Learned) cfg = cfg with { PositionRows = 300 + cfg.PositionOffset };
        return RandomModel.Create(cfg, seed);
    }

    [TestCaseSource(nameof(Families))]
    public void Logits_MatchTheFloat64Reference(string shape, Func<ModelConfig, ModelConfig> change)
    {
        var w = Weights(shape, change);
        var tokens = TinyModels.RandomTokens(3, 80, w.Config.VocabSize);
        var expected = new Reference64(w).Run(tokens)!;
        var logits = new CpuForward(w).Logits(tokens);
        int vocab = w.Config.VocabSize;
        double worst = 0, spread = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < vocab; v++)
            {
                worst = Math.Max(worst, Math.Abs(logits[t * vocab + v] - expected[t, v]));
                spread = Math.Max(spread, Math.Abs(expected[t, v]));
            }
        Assert.That(spread, Is.GreaterThan(0.5), "the logits are not trivially small");
        Assert.That(worst, Is.LessThan(2e-4 * Math.Max(1, spread)), $"{shape}: max |float32 − float64| over the logits");
    }

    [TestCaseSource(nameof(Families))]
    public void TokenNll_OnAChunkCache_EqualsTheWholeSequence(string shape, Func<ModelConfig, ModelConfig> change)
    {
        var w = Weights(shape, change);
        if (!RopeFrequencies.SameFor(w.Config, 32, 64))
        {
            // The frequencies change with the length (past the original context): reusing the cache would change the numbers.
            Assert.That(() => CpuProLongProbe.CheckPrefixReuse(w.Config, 32), Throws.TypeOf<NotSupportedException>());
            return;
        }
        var forward = new CpuForward(w);
        var tokens = TinyModels.RandomTokens(5, 64, w.Config.VocabSize);
        var targets = tokens.Skip(1).Append(-1).ToArray();
        var whole = forward.TokenNll(tokens, targets, null, out _, keepCache: false);
        forward.TokenNll(tokens[..32], targets[..32], null, out var cache, keepCache: true);
        var tail = forward.TokenNll(tokens[32..], targets[32..], cache, out _, keepCache: false);
        for (int t = 32; t < 63; t++)
            Assert.That(tail[t - 32], Is.EqualTo(whole[t]).Within(2e-5), $"{shape}: token {t}");
    }

    [TestCaseSource(nameof(Families))]
    public void SequencesNll_OnASharedPrefix_EqualsEachSequenceAlone(string shape, Func<ModelConfig, ModelConfig> change)
    {
        // Three sequences on one 40-token prefix, each long enough that the sliding windows (24 to 48) cut into the
        // prefix: one run must give every sequence's NLLs bit for bit as running it alone, in both arithmetic modes.
        var w = Weights(shape, change);
        const int p = 40, l = 30, count = 3;
        var prefixTokens = TinyModels.RandomTokens(21, p, w.Config.VocabSize);
        var tokens = TinyModels.RandomTokens(22, count * l, w.Config.VocabSize);
        var targets = tokens.Select((_, t) => t % l == l - 1 ? -1 : tokens[t + 1]).ToArray();
        targets[l + 3] = -1; // a row not scored in the middle of a sequence
        foreach (var math in new[] { CpuMath.Exact, CpuMath.Fast })
        {
            var forward = new CpuForward(w, maxThreads: 2, math);
            var prefix = forward.RunLayers(prefixTokens, null, keepCache: true)!;
            var together = forward.SequencesNll(tokens, targets, l, prefix);
            Assert.That(together, Has.Length.EqualTo(count * l));
            for (int s = 0; s < count; s++)
            {
                var alone = forward.TokenNll(tokens[(s * l)..((s + 1) * l)], targets[(s * l)..((s + 1) * l)], prefix, out _, keepCache: false);
                Assert.That(together[(s * l)..((s + 1) * l)], Is.EqualTo(alone), $"{shape} {math}: sequence {s}");
            }
            Assert.That(together.Count(double.IsNaN), Is.EqualTo(count + 1), "rows without a target stay NaN");

            // Without a prefix, each sequence's cache as running it alone with keepCache gives it.
            var first = forward.SequencesNll(tokens, targets, l, out var caches);
            Assert.That(caches, Has.Length.EqualTo(count));
            for (int s = 0; s < count; s++)
            {
                var alone = forward.TokenNll(tokens[(s * l)..((s + 1) * l)], targets[(s * l)..((s + 1) * l)], null, out var cache, keepCache: true);
                Assert.That(first[(s * l)..((s + 1) * l)], Is.EqualTo(alone), $"{shape} {math}: sequence {s} without a prefix");
                Assert.That(caches[s].Length, Is.EqualTo(l));
                for (int layer = 0; layer < w.Config.Layers; layer++)
                {
                    Assert.That(caches[s].Keys(layer).ToArray(), Is.EqualTo(cache!.Keys(layer).ToArray()), $"{shape}: keys of {s}, layer {layer}");
                    Assert.That(caches[s].Values(layer).ToArray(), Is.EqualTo(cache.Values(layer).ToArray()), $"{shape}: values of {s}, layer {layer}");
                }
            }
            Assert.That(together.Where(double.IsFinite).Distinct().Count(), Is.GreaterThan(count * (l - 2) / 2), "the sequences differ");
        }
    }

    [TestCaseSource(nameof(Families))]
    public void SavedAndLoaded_InEachFormat_GivesTheSameLogits(string shape, Func<ModelConfig, ModelConfig> change)
    {
        var w = Weights(shape, change);
        var tokens = TinyModels.RandomTokens(9, 40, w.Config.VocabSize);
        var expected = new CpuForward(w).Logits(tokens);
        using var dir = new TempDir();
        var formats = new List<ModelFormat> { ModelFormat.HuggingFace };
        if (Architectures.Has(w.Config.Architecture, ModelFormat.Gguf) && w.Config.RopeScaling.Type != RopeScalingType.Dynamic)
            formats.Add(ModelFormat.Gguf); // llama.cpp has no dynamic NTK scaling
        foreach (var format in formats)
        {
            string path = format == ModelFormat.Gguf ? dir.File("m.gguf") : dir.File("hf");
            ModelWeights loaded;
            if (format == ModelFormat.Gguf)
            {
                GgufModel.Save(path, w, TensorType.F32);
                using var file = GgufFile.Open(path);
                loaded = GgufModel.Load(file);
            }
            else
            {
                HuggingFaceModel.Save(path, w, TensorType.F32);
                loaded = HuggingFaceModel.Load(path);
            }
            var c = loaded.Config;
            Assert.Multiple(() =>
            {
                Assert.That(c.NormPlacement, Is.EqualTo(w.Config.NormPlacement), format.ToString());
                Assert.That(c.FeedForward, Is.EqualTo(w.Config.FeedForward), format.ToString());
                Assert.That(c.SlidingWindow, Is.EqualTo(w.Config.SlidingWindow), format.ToString());
                Assert.That(c.AttentionSoftCap, Is.EqualTo(w.Config.AttentionSoftCap), format.ToString());
                Assert.That(c.RopeScaling.Type, Is.EqualTo(w.Config.RopeScaling.Type), format.ToString());
                Assert.That(c.ParameterCount, Is.EqualTo(w.Config.ParameterCount), format.ToString());
            });
            var logits = new CpuForward(loaded).Logits(tokens);
            for (int i = 0; i < logits.Length; i++)
                Assert.That(logits[i], Is.EqualTo(expected[i]).Within(2e-5), $"{shape} {format}: logit {i}");
        }
    }

    [TestCase("tiny-gemma2")]
    [TestCase("tiny-mistral")]
    [TestCase("tiny-qwen3")]
    [TestCase("opt-tiny")]
    public void Ladm_MatchesTheFloat64Reference_WithTheModelsOwnAttention(string shape)
    {
        var w = Weights(shape, c => c.SlidingWindow is null ? c : c with { SlidingWindow = 100 });
        const int t = 240;
        var tokens = TinyModels.RandomTokens(12, t, w.Config.VocabSize);
        var schedule = LadmSchedule.Create(t, chunk: 8, dAfs: 2, dCds: 2);
        Assert.That(schedule.Spans, Has.Count.GreaterThan(3));
        using var probe = new CpuLadmProbe(new CpuForward(w));
        var m = probe.Measure(tokens, schedule);
        var expected = Reference64.Pfs(w, tokens, schedule);
        bool someZero = false;
        for (int layer = 0; layer < expected.Length; layer++)
            for (int si = 0; si < schedule.Spans.Count; si++)
                for (int j = 0; j < expected[layer][si].Length; j++)
                {
                    double e = expected[layer][si][j], a = m.Pfs[layer][si][j];
                    someZero |= e == 0;
                    Assert.That(a, Is.EqualTo(e).Within(1e-5 + 1e-4 * Math.Abs(e)), $"{shape} layer {layer} span {si} interval {j}");
                }
        if (w.Config.HasSlidingWindow)
            Assert.That(someZero, Is.True, "a window of 100 keys hides the far intervals of a 240-token sample: their PFS is 0");
    }

    [Test]
    public void GemmaNormWeights_AreStoredAsWInHuggingFaceAndAsOnePlusWInGguf()
    {
        var w = Weights("tiny-gemma2", c => c);
        using var dir = new TempDir();
        HuggingFaceModel.Save(dir.File("hf"), w, TensorType.F32);
        GgufModel.Save(dir.File("m.gguf"), w, TensorType.F32);
        using var st = SafetensorsCheckpoint.Open(dir.File("hf"));
        using var gg = GgufFile.Open(dir.File("m.gguf"));
        var hfNorm = st.ReadF32("model.layers.0.input_layernorm.weight");
        var ggNorm = gg.ReadF32("blk.0.attn_norm.weight");
        for (int i = 0; i < hfNorm.Length; i++)
        {
            Assert.That(1f + hfNorm[i], Is.EqualTo(w.Layers[0].AttnNorm[i]), "transformers' Gemma multiplies by (1 + w)");
            Assert.That(ggNorm[i], Is.EqualTo(w.Layers[0].AttnNorm[i]), "llama.cpp's converter stores 1 + w");
        }
    }

    [Test]
    public void Phi3FusedTensors_SplitIntoQkvAndGateUp()
    {
        var w = Weights("tiny-phi3", c => c);
        using var dir = new TempDir();
        HuggingFaceModel.Save(dir.File("hf"), w, TensorType.F32);
        using var st = SafetensorsCheckpoint.Open(dir.File("hf"));
        var c = w.Config;
        Assert.That(st.Tensors["model.layers.1.self_attn.qkv_proj.weight"].Shape, Is.EqualTo(new long[] { c.QDim + 2 * c.KvDim, c.Dim }));
        Assert.That(st.Tensors["model.layers.1.mlp.gate_up_proj.weight"].Shape, Is.EqualTo(new long[] { 2 * c.FfDim, c.Dim }));
        var qkv = st.ReadF32("model.layers.1.self_attn.qkv_proj.weight");
        var gu = st.ReadF32("model.layers.1.mlp.gate_up_proj.weight");
        Assert.That(qkv.AsSpan(c.QDim * c.Dim, c.KvDim * c.Dim).ToArray(), Is.EqualTo(w.Layers[1].Wk.ToFloat32()), "k rows follow q rows");
        Assert.That(gu.AsSpan(0, c.FfDim * c.Dim).ToArray(), Is.EqualTo(w.Layers[1].WGate!.ToFloat32()), "gate rows come first");
    }

    [Test]
    public void Opt350mCheckpointNames_WithTheDecoderPrefix_Load()
    {
        var w = Weights("opt-tiny", c => c);
        var renamed = Architectures.TensorsFor(w, ModelFormat.HuggingFace)
            .Select(t => (t.Name.StartsWith("model.decoder.", StringComparison.Ordinal) ? t.Name["model.".Length..] : t.Name, t.Data, t.Shape));
        using var src = TestModels.MemorySource.From(renamed);
        Assert.That(src.Tensors.Keys, Has.Some.StartsWith("decoder.layers."));
        var loaded = Architectures.LoadWeights(src, w.Config, ModelFormat.HuggingFace);
        Assert.That(loaded.PositionEmbedding, Is.EqualTo(w.PositionEmbedding));
        Assert.That(loaded.ProjectIn!.ToFloat32(), Is.EqualTo(w.ProjectIn!.ToFloat32()));
        Assert.That(loaded.Layers[1].BDown, Is.EqualTo(w.Layers[1].BDown));
    }

    [Test]
    public void LearnedPositions_BeyondTheTable_AreAClearError()
    {
        var w = RandomModel.Create(RandomModel.Shape("opt-tiny", vocabSize: 97) with { PositionRows = 2 + 50 }, 3);
        var forward = new CpuForward(w);
        Assert.That(() => forward.Logits(TinyModels.RandomTokens(1, 51, w.Config.VocabSize)),
            Throws.ArgumentException.With.Message.Contains("50 learned positions"));
        Assert.That(() => CpuProLongProbe.CheckPrefixReuse(w.Config, 32), Throws.TypeOf<NotSupportedException>().With.Message.Contains("--chunk 25"));
        Assert.That(() => CpuProLongProbe.CheckPrefixReuse(w.Config, 25), Throws.Nothing);
    }

    [Test]
    public void DynamicScaling_PastTheOriginalContext_RefusesPrefixReuse()
    {
        var c = RandomModel.Shape("tiny") with { RopeScaling = new RopeScaling { Type = RopeScalingType.Dynamic, Factor = 2, OriginalContext = 100 } };
        Assert.That(() => CpuProLongProbe.CheckPrefixReuse(c, 40), Throws.Nothing, "80 ≤ 100: the frequencies do not change");
        Assert.That(() => CpuProLongProbe.CheckPrefixReuse(c, 64), Throws.TypeOf<NotSupportedException>().With.Message.Contains("--chunk 50"));
    }
}
