using NUnit.Framework;
using LongDep.Models.Tests.HuggingFace;

namespace LongDep.Models.Tests;

public class ArchitecturesTests
{
    [Test]
    public void TableNamesMatchLlamaCppAndTransformers()
    {
        var gl = Architectures.Get("llama", ModelFormat.Gguf);
        var gq = Architectures.Get("qwen2", ModelFormat.Gguf);
        var hl = Architectures.Get("llama", ModelFormat.HuggingFace);
        var hq = Architectures.Get("qwen2", ModelFormat.HuggingFace);
        Assert.Multiple(() =>
        {
            Assert.That(gl.TokenEmbedding, Is.EqualTo("token_embd.weight"));
            Assert.That(gl.OutputNorm, Is.EqualTo("output_norm.weight"));
            Assert.That(gl.Output, Is.EqualTo("output.weight"));
            Assert.That(gl.LayerTensor(3, LayerRole.AttnNorm), Is.EqualTo("blk.3.attn_norm.weight"));
            Assert.That(gl.LayerTensor(3, LayerRole.O), Is.EqualTo("blk.3.attn_output.weight"));
            Assert.That(gl.LayerTensor(12, LayerRole.Down), Is.EqualTo("blk.12.ffn_down.weight"));
            Assert.That(gq.LayerTensor(0, LayerRole.KBias), Is.EqualTo("blk.0.attn_k.bias"));
            Assert.That(gl.Rope, Is.EqualTo(RopeStyle.AdjacentPairs));
            Assert.That(gq.Rope, Is.EqualTo(RopeStyle.Halves));
            Assert.That(gl.Has(LayerRole.QBias), Is.False);
            Assert.That(gq.Has(LayerRole.QBias), Is.True);

            Assert.That(hl.TokenEmbedding, Is.EqualTo("model.embed_tokens.weight"));
            Assert.That(hl.OutputNorm, Is.EqualTo("model.norm.weight"));
            Assert.That(hl.Output, Is.EqualTo("lm_head.weight"));
            Assert.That(hl.LayerTensor(5, LayerRole.AttnNorm), Is.EqualTo("model.layers.5.input_layernorm.weight"));
            Assert.That(hl.LayerTensor(5, LayerRole.FfnNorm), Is.EqualTo("model.layers.5.post_attention_layernorm.weight"));
            Assert.That(hl.LayerTensor(5, LayerRole.Q), Is.EqualTo("model.layers.5.self_attn.q_proj.weight"));
            Assert.That(hq.LayerTensor(5, LayerRole.VBias), Is.EqualTo("model.layers.5.self_attn.v_proj.bias"));
            Assert.That(hl.LayerTensor(5, LayerRole.Gate), Is.EqualTo("model.layers.5.mlp.gate_proj.weight"));
            Assert.That(hl.Rope, Is.EqualTo(RopeStyle.Halves));
            Assert.That(hq.Rope, Is.EqualTo(RopeStyle.Halves));
            Assert.That(() => Architectures.Get("gpt2", ModelFormat.Gguf), Throws.ArgumentException.With.Message.Contains("llama, qwen2"));
            Assert.That(() => Architectures.Get("opt", ModelFormat.Gguf), Throws.ArgumentException.With.Message.Contains("GGUF"));
        });
    }

    [Test]
    public void EveryRoleHasADistinctNamePerLayer()
    {
        foreach (var fmt in new[] { ModelFormat.Gguf, ModelFormat.HuggingFace })
        {
            var info = Architectures.Get("qwen2", fmt);
            var names = Enumerable.Range(0, 11).SelectMany(i => Enum.GetValues<LayerRole>().Where(info.Has).Select(r => info.LayerTensor(i, r))).ToList();
            Assert.That(names, Is.Unique, fmt.ToString());
        }
    }

    [Test]
    public void PermuteMatchesAHandWorkedExample()
    {
        // One head, d = 6, one column. Halves pairs rows (0,3), (1,4), (2,5); adjacent layout puts each pair side by side.
        float[] halves = [0, 1, 2, 3, 4, 5];
        Assert.That(Architectures.PermuteRowsHalvesToAdjacent(halves, heads: 1, headDim: 6, cols: 1), Is.EqualTo(new float[] { 0, 3, 1, 4, 2, 5 }));

        // Two heads, d = 4, two columns: rows are (10·row + col); each head permutes on its own.
        float[] w = [0, 1, 10, 11, 20, 21, 30, 31, /* head 2 */ 40, 41, 50, 51, 60, 61, 70, 71];
        float[] expected = [0, 1, 20, 21, 10, 11, 30, 31, 40, 41, 60, 61, 50, 51, 70, 71];
        Assert.That(Architectures.PermuteRowsHalvesToAdjacent(w, heads: 2, headDim: 4, cols: 2), Is.EqualTo(expected));
        Assert.That(Architectures.PermuteRowsAdjacentToHalves(expected, heads: 2, headDim: 4, cols: 2), Is.EqualTo(w));
    }

    [TestCase(1, 2, 1)]
    [TestCase(3, 8, 5)]
    [TestCase(4, 64, 3)]
    public void PermuteThenInverseIsIdentity(int heads, int headDim, int cols)
    {
        var w = TestModels.Random(new Random(heads * 100 + headDim), (long)heads * headDim * cols);
        var adj = Architectures.PermuteRowsHalvesToAdjacent(w, heads, headDim, cols);
        Assert.That(Architectures.PermuteRowsAdjacentToHalves(adj, heads, headDim, cols), Is.EqualTo(w));
        var hal = Architectures.PermuteRowsAdjacentToHalves(w, heads, headDim, cols);
        Assert.That(Architectures.PermuteRowsHalvesToAdjacent(hal, heads, headDim, cols), Is.EqualTo(w));
        if (headDim > 2) Assert.That(adj, Is.Not.EqualTo(w), "the permutation moves rows");
    }

    // RoPE written here in float64 for one head vector x of length d at position pos.
    private static double[] RopeHalves(double[] x, int pos, double theta)
    {
        int d = x.Length, half = d / 2;
        var y = new double[d];
        for (int i = 0; i < half; i++)
        {
            double a = pos * Math.Pow(theta, -2.0 * i / d);
            y[i] = x[i] * Math.Cos(a) - x[i + half] * Math.Sin(a);
            y[i + half] = x[i] * Math.Sin(a) + x[i + half] * Math.Cos(a);
        }
        return y;
    }

    private static double[] RopeAdjacent(double[] x, int pos, double theta)
    {
        int d = x.Length;
        var y = new double[d];
        for (int i = 0; i < d / 2; i++)
        {
            double a = pos * Math.Pow(theta, -2.0 * i / d);
            y[2 * i] = x[2 * i] * Math.Cos(a) - x[2 * i + 1] * Math.Sin(a);
            y[2 * i + 1] = x[2 * i] * Math.Sin(a) + x[2 * i + 1] * Math.Cos(a);
        }
        return y;
    }

    [Test]
    public void PermutedWeightsWithAdjacentRopeGiveTheSameScoresAsHalvesRope()
    {
        // The point of the permutation: q·k after RoPE is the same in both conventions.
        const int heads = 2, d = 8, cols = 5;
        var rng = new Random(17);
        var wq = TestModels.Random(rng, heads * d * cols);
        var wk = TestModels.Random(rng, heads * d * cols);
        var x1 = TestModels.Random(rng, cols);
        var x2 = TestModels.Random(rng, cols);
        var wqA = Architectures.PermuteRowsHalvesToAdjacent(wq, heads, d, cols);
        var wkA = Architectures.PermuteRowsHalvesToAdjacent(wk, heads, d, cols);

        double[] Project(float[] w, float[] x, int head)
        {
            var y = new double[d];
            for (int r = 0; r < d; r++)
                for (int c = 0; c < cols; c++) y[r] += (double)w[(head * d + r) * cols + c] * x[c];
            return y;
        }
        static double Dot(double[] a, double[] b) => a.Zip(b, (p, q) => p * q).Sum();

        for (int h = 0; h < heads; h++)
        {
            double halves = Dot(RopeHalves(Project(wq, x1, h), 7, 10000), RopeHalves(Project(wk, x2, h), 3, 10000));
            double adjacent = Dot(RopeAdjacent(Project(wqA, x1, h), 7, 10000), RopeAdjacent(Project(wkA, x2, h), 3, 10000));
            Assert.That(adjacent, Is.EqualTo(halves).Within(1e-12), $"head {h}");
        }
        // Without the permutation the two conventions disagree.
        double wrong = Dot(RopeAdjacent(Project(wq, x1, 0), 7, 10000), RopeAdjacent(Project(wk, x2, 0), 3, 10000));
        double right = Dot(RopeHalves(Project(wq, x1, 0), 7, 10000), RopeHalves(Project(wk, x2, 0), 3, 10000));
        Assert.That(Math.Abs(wrong - right), Is.GreaterThan(1e-6));
    }

    [TestCase("llama")]
    [TestCase("qwen2")]
    public void GgufTensorsRoundTripThroughTheTable(string arch)
    {
        var info = Architectures.Get(arch, ModelFormat.Gguf);
        var cfg = TestModels.Config(arch, rope: info.Rope);
        var w = TestModels.Weights(cfg);
        using var src = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.Gguf));
        Assert.That(src.Store.Keys, Does.Contain("blk.1.ffn_gate.weight").And.Contain("output.weight"));
        Assert.That(src.Store["blk.0.attn_q.weight"].Data, Is.EqualTo(w.Layers[0].Wq.ToFloat32()), "same RoPE convention: no permutation");
        Assert.That(src.Store["blk.0.attn_output.weight"].Shape, Is.EqualTo(new long[] { cfg.Dim, cfg.QDim }));
        var back = Architectures.LoadWeights(src, cfg, ModelFormat.Gguf);
        Assert.Multiple(() =>
        {
            Assert.That(back.Layers[1].Wk.ToFloat32(), Is.EqualTo(w.Layers[1].Wk.ToFloat32()));
            Assert.That(back.Layers[1].Bk, Is.EqualTo(w.Layers[1].Bk));
            Assert.That(back.Output.ToFloat32(), Is.EqualTo(w.Output.ToFloat32()));
            Assert.That(back.Layers[0].WDown.ToFloat32(), Is.EqualTo(w.Layers[0].WDown.ToFloat32()));
        });
    }

    [Test]
    public void GgufLlamaWithoutOutputIsTied()
    {
        var cfg = TestModels.Config("llama", rope: RopeStyle.AdjacentPairs);
        var w = TestModels.Weights(cfg);
        using var src = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.Gguf).Where(t => t.Name != "output.weight"));
        var back = Architectures.LoadWeights(src, cfg, ModelFormat.Gguf);
        Assert.That(back.Output.IsSameTensor(back.TokenEmbedding));
        Assert.That(back.Config.TiedEmbedding, Is.True);
    }

    [Test]
    public void HuggingFaceLlamaLoadedForAdjacentRopeIsPermuted()
    {
        // Weights held in HF order (halves), written as HF, loaded with a config asking for adjacent pairs:
        // Q, K rows come out as llama.cpp's converter would store them; V and everything else unchanged.
        var cfgHalves = TestModels.Config("llama");
        var w = TestModels.Weights(cfgHalves);
        using var src = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.HuggingFace));
        var adj = Architectures.LoadWeights(src, cfgHalves with { Rope = RopeStyle.AdjacentPairs }, ModelFormat.HuggingFace);
        Assert.Multiple(() =>
        {
            Assert.That(adj.Layers[0].Wq.ToFloat32(), Is.EqualTo(Architectures.PermuteRowsHalvesToAdjacent(w.Layers[0].Wq.ToFloat32(), cfgHalves.Heads, cfgHalves.HeadDim, cfgHalves.Dim)));
            Assert.That(adj.Layers[1].Wk.ToFloat32(), Is.EqualTo(Architectures.PermuteRowsHalvesToAdjacent(w.Layers[1].Wk.ToFloat32(), cfgHalves.KvHeads, cfgHalves.HeadDim, cfgHalves.Dim)));
            Assert.That(adj.Layers[0].Wv.ToFloat32(), Is.EqualTo(w.Layers[0].Wv.ToFloat32()));
            Assert.That(adj.Config.Rope, Is.EqualTo(RopeStyle.AdjacentPairs));
        });

        // And back: writing the adjacent weights as GGUF llama stores them as they are, as HF permutes them back.
        using var gguf = TestModels.MemorySource.From(Architectures.TensorsFor(adj, ModelFormat.Gguf));
        Assert.That(gguf.Store["blk.0.attn_q.weight"].Data, Is.EqualTo(adj.Layers[0].Wq.ToFloat32()));
        using var hf = TestModels.MemorySource.From(Architectures.TensorsFor(adj, ModelFormat.HuggingFace));
        Assert.That(hf.Store["model.layers.0.self_attn.q_proj.weight"].Data, Is.EqualTo(w.Layers[0].Wq.ToFloat32()));
        Assert.That(hf.Store["model.layers.1.self_attn.k_proj.weight"].Data, Is.EqualTo(w.Layers[1].Wk.ToFloat32()));
    }

    [Test]
    public void QwenBiasesArePermutedWithTheirRows()
    {
        var cfg = TestModels.Config("qwen2");
        var w = TestModels.Weights(cfg);
        using var src = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.HuggingFace));
        var adj = Architectures.LoadWeights(src, cfg with { Rope = RopeStyle.AdjacentPairs }, ModelFormat.HuggingFace);
        Assert.That(adj.Layers[0].Bq, Is.EqualTo(Architectures.PermuteRowsHalvesToAdjacent(w.Layers[0].Bq!, cfg.Heads, cfg.HeadDim, 1)));
        Assert.That(adj.Layers[0].Bv, Is.EqualTo(w.Layers[0].Bv));
    }

    [Test]
    public void LoadWeightsShapeErrorNamesTensorExpectedAndFound()
    {
        var cfg = TestModels.Config("qwen2");
        var w = TestModels.Weights(cfg);
        using var src = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.Gguf));
        var (_, data) = src.Store["blk.1.ffn_up.weight"];
        src.Store["blk.1.ffn_up.weight"] = ([cfg.Dim, cfg.FfDim], data);
        var e = Assert.Throws<ModelFormatException>(() => Architectures.LoadWeights(src, cfg, ModelFormat.Gguf));
        Assert.That(e!.Message, Does.Contain("'blk.1.ffn_up.weight' has shape [8, 12], expected [12, 8]"));
    }

    [Test]
    public void UnknownExtraTensorsAreRejectedButInvFreqIsIgnored()
    {
        var cfg = TestModels.Config("llama", rope: RopeStyle.AdjacentPairs);
        var w = TestModels.Weights(cfg);
        using var src = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.Gguf));
        src.Store["rope_freqs.weight"] = ([2], [1f, 2f]);
        var e = Assert.Throws<ModelFormatException>(() => Architectures.LoadWeights(src, cfg, ModelFormat.Gguf));
        Assert.That(e!.Message, Does.Contain("'rope_freqs.weight'"));

        using var hf = TestModels.MemorySource.From(Architectures.TensorsFor(w, ModelFormat.HuggingFace));
        hf.Store["model.layers.0.self_attn.rotary_emb.inv_freq"] = ([2], [1f, 0.01f]);
        Assert.That(() => Architectures.LoadWeights(hf, cfg with { Rope = RopeStyle.Halves }, ModelFormat.HuggingFace), Throws.Nothing);
    }

    [Test]
    public void TensorsForListsEveryTensorOnceWithConfigShapes()
    {
        var cfg = TestModels.Config("qwen2");
        var list = Architectures.TensorsFor(TestModels.Weights(cfg), ModelFormat.HuggingFace).ToList();
        Assert.That(list.Select(t => t.Name), Is.Unique);
        Assert.That(list, Has.Count.EqualTo(1 + cfg.Layers * 12 + 2));
        Assert.That(list.Sum(t => (long)t.Data.Length), Is.EqualTo(cfg.ParameterCount));
        foreach (var (name, data, shape) in list)
            Assert.That(data.LongLength, Is.EqualTo(shape.Aggregate(1L, (a, b) => a * b)), name);
    }
}
