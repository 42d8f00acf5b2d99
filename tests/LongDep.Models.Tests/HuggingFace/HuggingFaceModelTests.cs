using NUnit.Framework;
using System.Text.Json;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

public class HuggingFaceModelTests
{
    private static void AssertSameWeights(ModelWeights expected, ModelWeights actual)
    {
        Assert.Multiple(() =>
        {
            Assert.That(actual.TokenEmbedding.ToFloat32(), Is.EqualTo(expected.TokenEmbedding.ToFloat32()));
            Assert.That(actual.OutputNorm, Is.EqualTo(expected.OutputNorm));
            Assert.That(actual.Output.ToFloat32(), Is.EqualTo(expected.Output.ToFloat32()));
            Assert.That(actual.Layers, Has.Length.EqualTo(expected.Layers.Length));
            for (int i = 0; i < expected.Layers.Length; i++)
            {
                var (e, a) = (expected.Layers[i], actual.Layers[i]);
                Assert.That(a.AttnNorm, Is.EqualTo(e.AttnNorm), $"layer {i} attn norm");
                Assert.That(a.Wq.ToFloat32(), Is.EqualTo(e.Wq.ToFloat32()), $"layer {i} q");
                Assert.That(a.Wk.ToFloat32(), Is.EqualTo(e.Wk.ToFloat32()), $"layer {i} k");
                Assert.That(a.Wv.ToFloat32(), Is.EqualTo(e.Wv.ToFloat32()), $"layer {i} v");
                Assert.That(a.Wo.ToFloat32(), Is.EqualTo(e.Wo.ToFloat32()), $"layer {i} o");
                Assert.That(a.Bq, Is.EqualTo(e.Bq), $"layer {i} q bias");
                Assert.That(a.Bk, Is.EqualTo(e.Bk), $"layer {i} k bias");
                Assert.That(a.Bv, Is.EqualTo(e.Bv), $"layer {i} v bias");
                Assert.That(a.FfnNorm, Is.EqualTo(e.FfnNorm), $"layer {i} ffn norm");
                Assert.That(a.WGate?.ToFloat32(), Is.EqualTo(e.WGate?.ToFloat32()), $"layer {i} gate");
                Assert.That(a.WUp.ToFloat32(), Is.EqualTo(e.WUp.ToFloat32()), $"layer {i} up");
                Assert.That(a.WDown.ToFloat32(), Is.EqualTo(e.WDown.ToFloat32()), $"layer {i} down");
            }
        });
    }

    [TestCase("llama", false, 0)]
    [TestCase("llama", true, 0)]
    [TestCase("qwen2", true, 0)]
    [TestCase("qwen2", false, 300)]
    public void SaveThenLoadIsExactAtF32(string arch, bool tied, long maxShardBytes)
    {
        using var dir = new TempDir();
        var w = TestModels.Weights(TestModels.Config(arch, tied));
        HuggingFaceModel.Save(dir.Path, w, TensorType.F32, maxShardBytes);
        Assert.That(HuggingFaceModel.IsCheckpointFolder(dir.Path));
        Assert.That(File.Exists(dir.File("model.safetensors.index.json")), Is.EqualTo(maxShardBytes > 0));

        var back = HuggingFaceModel.Load(dir.Path);
        Assert.That(back.Config, Is.EqualTo(w.Config));
        AssertSameWeights(w, back);
        Assert.That(back.Output.IsSameTensor(back.TokenEmbedding), Is.EqualTo(tied), "a tied head is the same array");

        using var ck = SafetensorsCheckpoint.Open(dir.Path);
        Assert.That(ck.Tensors.ContainsKey("lm_head.weight"), Is.EqualTo(!tied), "a tied head is not stored");
        Assert.That(ck.Tensors.ContainsKey("model.layers.1.self_attn.k_proj.bias"), Is.EqualTo(arch == "qwen2"));
        Assert.That(ck.Tensors["model.layers.0.mlp.down_proj.weight"].Shape, Is.EqualTo(new long[] { 8, 12 }));
    }

    [Test]
    public void AMissingLmHeadMeansTied()
    {
        using var dir = new TempDir();
        var cfg = TestModels.Config("llama", tied: false);
        var w = TestModels.Weights(cfg);
        HfConfig.Write(dir.Path, cfg);
        SafetensorsWriter.Write(dir.Path, Architectures.TensorsFor(w, ModelFormat.HuggingFace).Where(t => t.Name != "lm_head.weight"), TensorType.F32);
        var back = HuggingFaceModel.Load(dir.Path);
        Assert.Multiple(() =>
        {
            Assert.That(back.Output.IsSameTensor(back.TokenEmbedding));
            Assert.That(back.Config.TiedEmbedding, Is.True, "the loaded config records that the head is tied");
            Assert.That(back.TokenEmbedding.ToFloat32(), Is.EqualTo(w.TokenEmbedding.ToFloat32()));
        });
    }

    [Test]
    public void TiedConfigIgnoresAStoredCopyOfTheHead()
    {
        using var dir = new TempDir();
        var cfg = TestModels.Config("qwen2", tied: true);
        var w = TestModels.Weights(cfg with { TiedEmbedding = false });
        HfConfig.Write(dir.Path, cfg);
        SafetensorsWriter.Write(dir.Path, Architectures.TensorsFor(w, ModelFormat.HuggingFace), TensorType.F32);
        var back = HuggingFaceModel.Load(dir.Path);
        Assert.That(back.Output.IsSameTensor(back.TokenEmbedding), "tie_word_embeddings wins, as in transformers");
    }

    [Test]
    public void SaveAtF16HalvesTheFileAndRoundsEachValue()
    {
        using var dir = new TempDir();
        var w = TestModels.Weights(TestModels.Config("llama"));
        HuggingFaceModel.Save(dir.Path, w, TensorType.F16);
        var back = HuggingFaceModel.Load(dir.Path);
        float[] original = w.TokenEmbedding.ToFloat32(), loaded = back.TokenEmbedding.ToFloat32();
        for (int i = 0; i < original.Length; i++)
            Assert.That(loaded[i], Is.EqualTo((float)(Half)original[i]));
        using var doc = JsonDocument.Parse(File.ReadAllText(dir.File("config.json")));
        Assert.That(doc.RootElement.GetProperty("torch_dtype").GetString(), Is.EqualTo("float16"));
        Assert.That(new FileInfo(dir.File("model.safetensors")).Length,
            Is.LessThan(w.Config.ParameterCount * 2 + 8192).And.GreaterThan(w.Config.ParameterCount * 2));
    }

    [Test]
    public void WrongShapeNamesTheTensorAndBothShapes()
    {
        using var dir = new TempDir();
        var cfg = TestModels.Config("llama");
        var w = TestModels.Weights(cfg);
        HfConfig.Write(dir.Path, cfg);
        // k_proj of layer 1 stored transposed: [8, 4] instead of [4, 8].
        var tensors = Architectures.TensorsFor(w, ModelFormat.HuggingFace)
            .Select(t => t.Name == "model.layers.1.self_attn.k_proj.weight" ? (t.Name, t.Data, new long[] { 8, 4 }) : t);
        SafetensorsWriter.Write(dir.Path, tensors, TensorType.F32);
        var e = Assert.Throws<ModelFormatException>(() => HuggingFaceModel.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("'model.layers.1.self_attn.k_proj.weight'").And.Contain("[8, 4]").And.Contain("expected [4, 8]"));
    }

    [Test]
    public void AMissingTensorIsNamed()
    {
        using var dir = new TempDir();
        var cfg = TestModels.Config("qwen2");
        var w = TestModels.Weights(cfg);
        HfConfig.Write(dir.Path, cfg);
        SafetensorsWriter.Write(dir.Path,
            Architectures.TensorsFor(w, ModelFormat.HuggingFace).Where(t => t.Name != "model.layers.0.self_attn.v_proj.bias"), TensorType.F32);
        var e = Assert.Throws<ModelFormatException>(() => HuggingFaceModel.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("'model.layers.0.self_attn.v_proj.bias' is missing").And.Contain("[4]"));
    }

    [Test]
    public void ACheckpointWithMoreLayersThanTheConfigIsRejected()
    {
        using var dir = new TempDir();
        var w = TestModels.Weights(TestModels.Config("llama") with { Layers = 3 });
        SafetensorsWriter.Write(dir.Path, Architectures.TensorsFor(w, ModelFormat.HuggingFace), TensorType.F32);
        HfConfig.Write(dir.Path, TestModels.Config("llama"));
        var e = Assert.Throws<ModelFormatException>(() => HuggingFaceModel.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("model.layers.2."), "the unused layer is named");
    }

    [Test]
    public void ALlamaCheckpointWithBiasesButAConfigWithoutIsRejected()
    {
        using var dir = new TempDir();
        var w = TestModels.Weights(TestModels.Config("qwen2"));
        SafetensorsWriter.Write(dir.Path, Architectures.TensorsFor(w, ModelFormat.HuggingFace), TensorType.F32);
        HfConfig.Write(dir.Path, TestModels.Config("llama"));
        var e = Assert.Throws<ModelFormatException>(() => HuggingFaceModel.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("q_proj.bias").And.Contain("no Q/K/V bias"));
    }

    [Test]
    public void UnreadableDtypeInACheckpointFailsCleanly()
    {
        // An I8 tensor where a weight is expected: listed, shape-checked, then the read names the dtype.
        using var dir = new TempDir();
        var cfg = TestModels.Config("llama") with { Layers = 1 };
        HfConfig.Write(dir.Path, cfg);
        File.WriteAllBytes(dir.File("model.safetensors"),
            TestModels.RawFile("""{"model.embed_tokens.weight":{"dtype":"I8","shape":[16,8],"data_offsets":[0,128]}}""", 128));
        var e = Assert.Throws<ModelFormatException>(() => HuggingFaceModel.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("I8").And.Contain("model.embed_tokens.weight"));
    }
}
