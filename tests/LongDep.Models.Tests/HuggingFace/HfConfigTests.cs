using NUnit.Framework;
using System.Text;
using System.Text.Json;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

public class HfConfigTests
{
    private static ModelConfig Parse(string json) => HfConfig.Parse(Encoding.UTF8.GetBytes(json), "config.json");

    // TinyLlama-1.1B's config.json, trimmed to the fields that matter.
    private const string TinyLlama = """
        {
          "architectures": ["LlamaForCausalLM"],
          "bos_token_id": 1, "eos_token_id": 2,
          "hidden_act": "silu",
          "hidden_size": 2048,
          "initializer_range": 0.02,
          "intermediate_size": 5632,
          "max_position_embeddings": 2048,
          "model_type": "llama",
          "num_attention_heads": 32,
          "num_hidden_layers": 22,
          "num_key_value_heads": 4,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_scaling": null,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.35.0",
          "use_cache": true,
          "vocab_size": 32000
        }
        """;

    // Qwen2-0.5B's config.json, trimmed.
    private const string Qwen2 = """
        {
          "architectures": ["Qwen2ForCausalLM"],
          "attention_dropout": 0.0,
          "hidden_act": "silu",
          "hidden_size": 896,
          "intermediate_size": 4864,
          "max_position_embeddings": 131072,
          "max_window_layers": 24,
          "model_type": "qwen2",
          "num_attention_heads": 14,
          "num_hidden_layers": 24,
          "num_key_value_heads": 2,
          "rms_norm_eps": 1e-06,
          "rope_theta": 1000000.0,
          "sliding_window": 131072,
          "tie_word_embeddings": true,
          "torch_dtype": "bfloat16",
          "use_sliding_window": false,
          "vocab_size": 151936
        }
        """;

    [Test]
    public void ParsesTinyLlama()
    {
        var c = Parse(TinyLlama);
        Assert.Multiple(() =>
        {
            Assert.That(c.Architecture, Is.EqualTo("llama"));
            Assert.That(c.Layers, Is.EqualTo(22));
            Assert.That(c.Dim, Is.EqualTo(2048));
            Assert.That(c.FfDim, Is.EqualTo(5632));
            Assert.That(c.Heads, Is.EqualTo(32));
            Assert.That(c.KvHeads, Is.EqualTo(4));
            Assert.That(c.HeadDim, Is.EqualTo(64), "hidden_size / heads");
            Assert.That(c.VocabSize, Is.EqualTo(32000));
            Assert.That(c.ContextLength, Is.EqualTo(2048));
            Assert.That(c.NormEps, Is.EqualTo(1e-5f));
            Assert.That(c.RopeTheta, Is.EqualTo(10000f));
            Assert.That(c.Rope, Is.EqualTo(RopeStyle.Halves));
            Assert.That(c.QkvBias, Is.False);
            Assert.That(c.TiedEmbedding, Is.False);
            Assert.That(c.ParameterCount, Is.EqualTo(1_100_048_384L), "TinyLlama-1.1B's published parameter count");
        });
    }

    [Test]
    public void ParsesQwen2WithBiasAndTiedEmbedding()
    {
        var c = Parse(Qwen2);
        Assert.Multiple(() =>
        {
            Assert.That(c.Architecture, Is.EqualTo("qwen2"));
            Assert.That(c.HeadDim, Is.EqualTo(64));
            Assert.That(c.KvHeads, Is.EqualTo(2));
            Assert.That(c.QkvBias, Is.True, "qwen2 always has Q/K/V biases");
            Assert.That(c.TiedEmbedding, Is.True);
            Assert.That(c.RopeTheta, Is.EqualTo(1_000_000f));
            Assert.That(c.NormEps, Is.EqualTo(1e-6f));
            Assert.That(c.ContextLength, Is.EqualTo(131072));
            Assert.That(c.ParameterCount, Is.EqualTo(494_032_768L), "Qwen2-0.5B's published parameter count");
        });
    }

    [Test]
    public void DefaultsFollowTransformers()
    {
        var llama = Parse("""
            {"architectures":["LlamaForCausalLM"],"num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,
             "num_attention_heads":4,"vocab_size":100}
            """);
        var qwen = Parse("""
            {"model_type":"qwen2","num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,
             "num_attention_heads":4,"vocab_size":100,"rope_theta":null,"head_dim":null}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(llama.KvHeads, Is.EqualTo(4), "num_key_value_heads defaults to the head count");
            Assert.That(llama.HeadDim, Is.EqualTo(16));
            Assert.That(llama.RopeTheta, Is.EqualTo(10000f));
            Assert.That(llama.NormEps, Is.EqualTo(1e-6f));
            Assert.That(llama.TiedEmbedding, Is.False);
            Assert.That(llama.QkvBias, Is.False);
            Assert.That(llama.ContextLength, Is.EqualTo(2048));
            Assert.That(qwen.Architecture, Is.EqualTo("qwen2"), "model_type is used when architectures is absent");
            Assert.That(qwen.ContextLength, Is.EqualTo(32768));
            Assert.That(qwen.RopeTheta, Is.EqualTo(10000f), "null means default");
            Assert.That(qwen.SlidingWindow, Is.Null, "use_sliding_window defaults to false");
            Assert.That(qwen.HeadDim, Is.EqualTo(16));
        });
    }

    [Test]
    public void ExplicitHeadDimAndRopeParametersAreRead()
    {
        var c = Parse("""
            {"architectures":["LlamaForCausalLM"],"num_hidden_layers":1,"hidden_size":64,"intermediate_size":96,
             "num_attention_heads":4,"num_key_value_heads":2,"head_dim":32,"vocab_size":50,
             "rope_parameters":{"rope_type":"default","rope_theta":500000.0},"rope_scaling":{"rope_type":"default"}}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.HeadDim, Is.EqualTo(32));
            Assert.That(c.QDim, Is.EqualTo(128));
            Assert.That(c.RopeTheta, Is.EqualTo(500000f));
        });
    }

    private const string Base = """
        "num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"vocab_size":100
        """;

    private static IEnumerable<TestCaseData> Bad()
    {
        TestCaseData C(string name, string json, string expected) => new TestCaseData(json, expected).SetName("BadConfig_" + name);
        yield return C("FalconArch", $$"""{"architectures":["FalconForCausalLM"],{{Base}}}""", "LlamaForCausalLM (llama), MistralForCausalLM (mistral), Qwen2ForCausalLM (qwen2)");
        yield return C("GptNeoX", $$"""{"architectures":["GPTNeoXForCausalLM"],{{Base}}}""", "unsupported architecture GPTNeoXForCausalLM");
        yield return C("NoArch", $$"""{{{Base}}}""", "neither \"architectures\" nor \"model_type\"");
        yield return C("BadModelType", $$"""{"model_type":"gemma",{{Base}}}""", "unsupported model_type 'gemma'");
        yield return C("ArchNotArray", $$"""{"architectures":"LlamaForCausalLM",{{Base}}}""", "non-empty array");
        yield return C("MissingLayers", """{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"vocab_size":100}""", "missing \"num_hidden_layers\"");
        yield return C("FloatLayers", """{"architectures":["LlamaForCausalLM"],"num_hidden_layers":2.5,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"vocab_size":100}""", "\"num_hidden_layers\" is 2.5");
        yield return C("StringHidden", """{"architectures":["LlamaForCausalLM"],"num_hidden_layers":2,"hidden_size":"64","intermediate_size":128,"num_attention_heads":4,"vocab_size":100}""", "\"hidden_size\"");
        yield return C("HugeVocab", """{"architectures":["LlamaForCausalLM"],"num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"vocab_size":99999999999}""", "\"vocab_size\"");
        yield return C("NegativeLayers", """{"architectures":["LlamaForCausalLM"],"num_hidden_layers":-3,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"vocab_size":100}""", "layer count -3");
        yield return C("HeadsDoNotDivide", """{"architectures":["LlamaForCausalLM"],"num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,"num_attention_heads":5,"vocab_size":100}""", "not a multiple");
        yield return C("KvHeadsDoNotDivide", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"num_key_value_heads":3}""", "KV head count 3");
        yield return C("RopeUnknown", $$$"""{"architectures":["LlamaForCausalLM"],{{{Base}}},"rope_scaling":{"type":"ntk-by-parts","factor":2.0}}""", "rope_scaling type 'ntk-by-parts' is not supported");
        yield return C("RopeLinearNoFactor", $$$"""{"architectures":["LlamaForCausalLM"],{{{Base}}},"rope_scaling":{"type":"linear"}}""", "needs \"factor\"");
        yield return C("LongRopeShortList", $$$"""{"architectures":["Phi3ForCausalLM"],{{{Base}}},"rope_scaling":{"type":"longrope","short_factor":[1,1],"long_factor":[1,1]}}""", "expected 8");
        yield return C("PartialRotary", $$"""{"architectures":["Phi3ForCausalLM"],{{Base}},"partial_rotary_factor":0.5}""", "partial_rotary_factor");
        yield return C("OptGelu", """{"architectures":["OPTForCausalLM"],"num_hidden_layers":2,"hidden_size":64,"num_attention_heads":4,"vocab_size":100,"activation_function":"gelu"}""", "activation_function 'gelu'");
        yield return C("Multimodal", $$"""{"architectures":["Gemma3ForConditionalGeneration"],"text_config":{},{{Base}}}""", "multimodal");
        yield return C("LayerTypesWrongLength", $$"""{"architectures":["Gemma2ForCausalLM"],{{Base}},"layer_types":["full_attention"]}""", "one type per layer");
        yield return C("RopeLlama3", $$$"""{"architectures":["LlamaForCausalLM"],{{{Base}}},"rope_scaling":{"rope_type":"llama3","factor":8.0}}""", "'llama3'");
        yield return C("RopeParamsYarn", $$$"""{"architectures":["Qwen2ForCausalLM"],{{{Base}}},"rope_parameters":{"rope_type":"yarn","rope_theta":10000}}""", "rope_parameters type 'yarn'");
        yield return C("RopeScalingNoType", $$$"""{"architectures":["LlamaForCausalLM"],{{{Base}}},"rope_scaling":{"factor":2.0}}""", "no type");
        yield return C("RopeThetaZero", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"rope_theta":0}""", "RoPE base");
        yield return C("EpsNegative", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"rms_norm_eps":-1}""", "epsilon");
        yield return C("EpsHuge", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"rms_norm_eps":1e300}""", "epsilon");
        yield return C("Gelu", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"hidden_act":"gelu"}""", "hidden activation 'gelu' is not supported for llama");
        yield return C("AttentionBias", $$"""{"architectures":["MistralForCausalLM"],{{Base}},"attention_bias":true}""", "attention_bias=true is not supported for mistral");
        yield return C("MlpBias", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"mlp_bias":true}""", "mlp_bias");
        yield return C("SlidingWindowZero", $$"""{"architectures":["MistralForCausalLM"],{{Base}},"sliding_window":0}""", "sliding_window 0");
        yield return C("TiedNotBool", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"tie_word_embeddings":1}""", "true or false");
        yield return C("ZeroContext", $$"""{"architectures":["LlamaForCausalLM"],{{Base}},"max_position_embeddings":0}""", "max_position_embeddings 0");
        yield return C("NotJson", "{\"architectures\":", "not valid JSON");
        yield return C("Array", "[]", "JSON object");
    }

    [TestCaseSource(nameof(Bad))]
    public void BadConfigIsRejectedWithAClearMessage(string json, string expected)
    {
        var e = Assert.Throws<ModelFormatException>(() => Parse(json));
        Assert.That(e!.Message, Does.Contain(expected));
    }

    [Test]
    public void LoadNamesAMissingFile()
    {
        using var dir = new TempDir();
        Assert.That(() => HfConfig.Load(dir.Path), Throws.TypeOf<ModelFormatException>().With.Message.Contains("no config.json"));
        Assert.That(() => HfConfig.Load(dir.File("absent")), Throws.TypeOf<ModelFormatException>().With.Message.Contains("folder not found"));
    }

    [TestCase("llama", false, TensorType.BF16)]
    [TestCase("llama", true, TensorType.F16)]
    [TestCase("qwen2", true, TensorType.F32)]
    public void WriteThenLoadGivesTheSameConfig(string arch, bool tied, TensorType dtype)
    {
        using var dir = new TempDir();
        var cfg = TestModels.Config(arch, tied) with { NormEps = 1e-5f, RopeTheta = 500000f, KvHeads = 2, HeadDim = 6 };
        HfConfig.Write(dir.Path, cfg, dtype, bosTokenId: 1, eosTokenId: 2);
        Assert.That(HfConfig.Load(dir.Path), Is.EqualTo(cfg));

        using var doc = JsonDocument.Parse(File.ReadAllText(dir.File("config.json")));
        var root = doc.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("model_type").GetString(), Is.EqualTo(arch));
            Assert.That(root.GetProperty("architectures")[0].GetString(), Is.EqualTo(arch == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"));
            Assert.That(root.GetProperty("torch_dtype").GetString(), Is.EqualTo(dtype switch { TensorType.F32 => "float32", TensorType.F16 => "float16", _ => "bfloat16" }));
            Assert.That(root.GetProperty("bos_token_id").GetInt32(), Is.EqualTo(1));
            Assert.That(root.GetProperty("eos_token_id").GetInt32(), Is.EqualTo(2));
            Assert.That(root.GetProperty("rope_scaling").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(root.GetProperty("rms_norm_eps").GetDouble(), Is.EqualTo(1e-5).Within(1e-12), "written as the float's shortest text");
        });
    }

    [Test]
    public void WriteRefusesWhatAHuggingFaceConfigCannotSay()
    {
        using var dir = new TempDir();
        Assert.Multiple(() =>
        {
            Assert.That(() => HfConfig.Write(dir.Path, TestModels.Config("llama", rope: RopeStyle.AdjacentPairs)),
                Throws.ArgumentException.With.Message.Contains("Halves"));
            Assert.That(() => HfConfig.Write(dir.Path, TestModels.Config("llama") with { QkvBias = true }),
                Throws.ArgumentException.With.Message.Contains("o_proj"));
            Assert.That(() => HfConfig.Write(dir.Path, TestModels.Config("llama"), TensorType.Q4_K), Throws.ArgumentException);
        });
    }
}
