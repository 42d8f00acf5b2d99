using LongDep.Models.Tests.HuggingFace;
using LongDep.Models.Tokenization;
using NUnit.Framework;

namespace LongDep.Models.Tests.Tokenization;

/// <summary>The default of --add-bos: what the model's own tokenizer configuration says (OPT: none, as ProLong).</summary>
public class BosDefaultTests
{
    [TestCase("""{"add_bos_token": true}""", null, "llama", true)]
    [TestCase("""{"add_bos_token": false}""", null, "llama", false)]
    [TestCase("""{"add_bos_token": true}""", null, "opt", false)]
    [TestCase(null, """{"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>"}},{"Sequence":{"id":"A"}}]}}""", "llama", true)]
    [TestCase(null, """{"post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"TemplateProcessing","single":[{"Sequence":{"id":"A"}}]}]}}""", "qwen2", false)]
    [TestCase(null, """{"post_processor":null}""", "qwen2", false)]
    [TestCase(null, null, "llama", false)]
    [TestCase("not json", null, "llama", false)]
    public void FromFolder(string? tokenizerConfig, string? tokenizerJson, string architecture, bool expected)
    {
        using var dir = new TempDir();
        if (tokenizerConfig is not null) File.WriteAllText(dir.File("tokenizer_config.json"), tokenizerConfig);
        if (tokenizerJson is not null) File.WriteAllText(dir.File("tokenizer.json"), tokenizerJson);
        Assert.That(BosDefault.FromFolder(dir.Path, architecture), Is.EqualTo(expected));
    }

    [Test]
    public void FromGguf_ReadsAddBosToken()
    {
        using var dir = new TempDir();
        var cfg = LongDep.Models.Synthetic.RandomModel.TinyConfig();
        var weights = LongDep.Models.Synthetic.RandomModel.Create(cfg, 1);
        string plain = dir.File("plain.gguf"), withBos = dir.File("bos.gguf");
        LongDep.Models.Gguf.GgufModel.Save(plain, weights, TensorType.F32);
        var w = new LongDep.Models.Gguf.GgufWriter();
        using (var f = LongDep.Models.Gguf.GgufFile.Open(plain))
        {
            foreach (var (key, value) in f.Metadata)
                switch (value)
                {
                    case string v: w.Add(key, v); break;
                    case uint v: w.Add(key, v); break;
                    case float v: w.Add(key, v); break;
                }
            foreach (var t in f.TensorList) w.AddTensorRaw(t.Name, t.Type, t.Shape, f.RawBytes(t.Name));
            Assert.That(BosDefault.FromGguf(f, "llama"), Is.False, "no key: no BOS");
        }
        w.Add("tokenizer.ggml.add_bos_token", true);
        w.Write(withBos);
        using var g = LongDep.Models.Gguf.GgufFile.Open(withBos);
        Assert.That(BosDefault.FromGguf(g, "llama"), Is.True);
        Assert.That(BosDefault.FromGguf(g, "opt"), Is.False);
    }
}
