using System.Text;
using LongDep.Models.HuggingFace;
using NUnit.Framework;

namespace LongDep.Models.Tests.HuggingFace;

/// <summary>
/// The config.json of published checkpoints of each family, trimmed to the fields that matter, read into the block
/// description; the parameter counts are the ones the model cards and the checkpoints give.
/// </summary>
public class FamilyConfigTests
{
    private static ModelConfig Parse(string json) => HfConfig.Parse(Encoding.UTF8.GetBytes(json), "config.json");

    [Test]
    public void Llama32_1B_Llama3Scaling()
    {
        var c = Parse("""
            {"architectures":["LlamaForCausalLM"],"attention_bias":false,"head_dim":64,"hidden_act":"silu","hidden_size":2048,
             "intermediate_size":8192,"max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama","num_attention_heads":32,
             "num_hidden_layers":16,"num_key_value_heads":8,"rms_norm_eps":1e-05,
             "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},
             "rope_theta":500000.0,"tie_word_embeddings":true,"vocab_size":128256}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.Llama3));
            Assert.That(c.RopeScaling.Factor, Is.EqualTo(32));
            Assert.That(c.RopeScaling.OriginalContext, Is.EqualTo(8192));
            Assert.That(c.ParameterCount, Is.EqualTo(1_235_814_400L));
        });
        // The highest frequency is kept, the lowest divided by the factor (wavelength past 8192 / low_freq_factor).
        var f = RopeFrequencies.For(c, 0, 100);
        Assert.That(f.InverseFrequencies[0], Is.EqualTo(1.0));
        Assert.That(f.InverseFrequencies[31], Is.EqualTo(Math.Pow(500000, -62.0 / 64) / 32).Within(1e-18));
    }

    [Test]
    public void Qwen25_YarnAsItsModelCardAddsIt()
    {
        var c = Parse("""
            {"architectures":["Qwen2ForCausalLM"],"hidden_size":3584,"intermediate_size":18944,"max_position_embeddings":32768,
             "max_window_layers":28,"model_type":"qwen2","num_attention_heads":28,"num_hidden_layers":28,"num_key_value_heads":4,
             "rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":131072,"tie_word_embeddings":false,"use_sliding_window":false,
             "vocab_size":152064,"rope_scaling":{"factor":4.0,"original_max_position_embeddings":32768,"type":"yarn"}}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.Yarn));
            Assert.That(c.RopeScaling.OriginalContext, Is.EqualTo(32768));
            Assert.That(c.SlidingWindow, Is.Null, "use_sliding_window false");
            Assert.That(c.QkvBias, Is.True);
            Assert.That(c.ParameterCount, Is.EqualTo(7_615_616_512L), "Qwen2.5-7B");
        });
        var f = RopeFrequencies.For(c, 0, 100);
        Assert.That(f.AttentionFactor, Is.EqualTo(0.1 * Math.Log(4) + 1).Within(1e-15), "yarn's default attention factor");
        Assert.That(f.InverseFrequencies[0], Is.EqualTo(1.0), "the fastest frequencies are extrapolated (kept)");
        Assert.That(f.InverseFrequencies[63], Is.EqualTo(Math.Pow(1e6, -126.0 / 128) / 4).Within(1e-18), "the slowest are interpolated");
    }

    [Test]
    public void Qwen3_06B_QkNorm()
    {
        var c = Parse("""
            {"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"head_dim":128,"hidden_act":"silu","hidden_size":1024,
             "intermediate_size":3072,"max_position_embeddings":40960,"max_window_layers":28,"model_type":"qwen3","num_attention_heads":16,
             "num_hidden_layers":28,"num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,
             "sliding_window":null,"tie_word_embeddings":true,"use_sliding_window":false,"vocab_size":151936}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.QkNorm, Is.True);
            Assert.That(c.QkvBias, Is.False);
            Assert.That(c.HeadDim, Is.EqualTo(128));
            Assert.That(c.QDim, Is.EqualTo(2048), "head_dim × heads, not hidden_size");
            Assert.That(c.ParameterCount, Is.EqualTo(596_049_920L));
        });
    }

    [Test]
    public void Mistral7B_v01_SlidingWindowOnEveryLayer()
    {
        var c = Parse("""
            {"architectures":["MistralForCausalLM"],"hidden_act":"silu","hidden_size":4096,"intermediate_size":14336,
             "max_position_embeddings":32768,"model_type":"mistral","num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,
             "rms_norm_eps":1e-05,"rope_theta":10000.0,"sliding_window":4096,"tie_word_embeddings":false,"vocab_size":32000}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.Architecture, Is.EqualTo("mistral"));
            Assert.That(c.SlidingWindow, Is.EqualTo(4096));
            Assert.That(Enumerable.Range(0, 32).All(l => c.WindowOf(l) == 4096), Is.True);
            Assert.That(c.ParameterCount, Is.EqualTo(7_241_732_096L));
        });
        var v02 = Parse("""{"architectures":["MistralForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":100,"sliding_window":null}""");
        Assert.That(v02.SlidingWindow, Is.Null, "null: full attention (Mistral v0.2 and later)");
    }

    [Test]
    public void Gemma2_2B_SoftCapsSandwichAndAlternatingWindows()
    {
        var c = Parse("""
            {"architectures":["Gemma2ForCausalLM"],"attn_logit_softcapping":50.0,"final_logit_softcapping":30.0,"head_dim":256,
             "hidden_act":"gelu_pytorch_tanh","hidden_activation":"gelu_pytorch_tanh","hidden_size":2304,"intermediate_size":9216,
             "max_position_embeddings":8192,"model_type":"gemma2","num_attention_heads":8,"num_hidden_layers":26,"num_key_value_heads":4,
             "query_pre_attn_scalar":256,"rms_norm_eps":1e-06,"rope_theta":10000.0,"sliding_window":4096,"vocab_size":256000}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.NormPlacement, Is.EqualTo(NormPlacement.Sandwich));
            Assert.That(c.FeedForward, Is.EqualTo(FeedForwardKind.GeGluTanh));
            Assert.That(c.AttentionSoftCap, Is.EqualTo(50f));
            Assert.That(c.FinalSoftCap, Is.EqualTo(30f));
            Assert.That(c.EmbedScale, Is.EqualTo(MathF.Sqrt(2304)));
            Assert.That(c.ScoreScale, Is.EqualTo(1f / 16f));
            Assert.That(c.WindowOf(0), Is.EqualTo(4096));
            Assert.That(c.WindowOf(1), Is.Null);
            Assert.That(c.TiedEmbedding, Is.True, "Gemma ties by default");
            Assert.That(c.ParameterCount, Is.EqualTo(2_614_341_888L));
        });
    }

    [Test]
    public void Gemma3_1B_LocalRopeBaseAndFiveToOnePattern()
    {
        var c = Parse("""
            {"architectures":["Gemma3ForCausalLM"],"attn_logit_softcapping":null,"final_logit_softcapping":null,"head_dim":256,
             "hidden_activation":"gelu_pytorch_tanh","hidden_size":1152,"intermediate_size":6912,"max_position_embeddings":32768,
             "model_type":"gemma3_text","num_attention_heads":4,"num_hidden_layers":26,"num_key_value_heads":1,"query_pre_attn_scalar":256,
             "rms_norm_eps":1e-06,"rope_local_base_freq":10000,"rope_scaling":null,"rope_theta":1000000,"sliding_window":512,
             "sliding_window_pattern":6,"vocab_size":262144}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.QkNorm, Is.True);
            Assert.That(c.AttentionSoftCap, Is.Null);
            Assert.That(c.FinalSoftCap, Is.Null);
            Assert.That(c.LocalRopeTheta, Is.EqualTo(10000f));
            Assert.That(Enumerable.Range(0, 12).Select(l => c.WindowOf(l) is null), Is.EqualTo(new[] { false, false, false, false, false, true, false, false, false, false, false, true }));
            Assert.That(c.ParameterCount, Is.EqualTo(999_885_952L));
        });
        Assert.That(RopeFrequencies.For(c, 0, 10).InverseFrequencies[1], Is.EqualTo(Math.Pow(10000, -2.0 / 256)).Within(1e-15), "a local layer uses the local base");
        Assert.That(RopeFrequencies.For(c, 5, 10).InverseFrequencies[1], Is.EqualTo(Math.Pow(1e6, -2.0 / 256)).Within(1e-15), "a global layer uses rope_theta");
    }

    [Test]
    public void Phi3Mini128k_LongRope()
    {
        string factors = string.Join(",", Enumerable.Range(0, 48).Select(i => (1 + i * 0.5).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var c = Parse($$"""
            {"architectures":["Phi3ForCausalLM"],"hidden_act":"silu","hidden_size":3072,"intermediate_size":8192,"max_position_embeddings":131072,
             "model_type":"phi3","num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":32,"original_max_position_embeddings":4096,
             "rms_norm_eps":1e-05,"rope_scaling":{"long_factor":[{{factors}}],"short_factor":[{{factors}}],"type":"longrope"},"rope_theta":10000.0,
             "sliding_window":262144,"tie_word_embeddings":false,"vocab_size":32064}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.LongRope));
            Assert.That(c.RopeScaling.OriginalContext, Is.EqualTo(4096));
            Assert.That(c.ParameterCount, Is.EqualTo(3_821_079_552L));
        });
        var f = RopeFrequencies.For(c, 0, 5000);
        Assert.That(f.AttentionFactor, Is.EqualTo(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096))).Within(1e-15), "sqrt(1 + ln(128K/4K) / ln 4K)");
        Assert.That(f.InverseFrequencies[2], Is.EqualTo(Math.Pow(10000, -4.0 / 96) / 2.0).Within(1e-15));
    }

    [Test]
    public void Opt350m_PostNormWithProjections_And125mPreNorm()
    {
        var c = Parse("""
            {"activation_dropout":0.0,"activation_function":"relu","architectures":["OPTForCausalLM"],"attention_dropout":0.0,
             "bos_token_id":2,"do_layer_norm_before":false,"dropout":0.1,"eos_token_id":2,"ffn_dim":4096,"hidden_size":1024,
             "init_std":0.02,"layerdrop":0.0,"max_position_embeddings":2048,"model_type":"opt","num_attention_heads":16,
             "num_hidden_layers":24,"pad_token_id":1,"prefix":"</s>","torch_dtype":"float16","use_cache":true,"vocab_size":50272,
             "word_embed_proj_dim":512}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.Architecture, Is.EqualTo("opt"));
            Assert.That(c.NormPlacement, Is.EqualTo(NormPlacement.Post));
            Assert.That(c.FinalNorm, Is.False);
            Assert.That(c.Norm, Is.EqualTo(NormKind.LayerNorm));
            Assert.That(c.Positions, Is.EqualTo(PositionKind.Learned));
            Assert.That(c.PositionRows, Is.EqualTo(2050), "max_position_embeddings + the offset of 2");
            Assert.That(c.EmbeddingWidth, Is.EqualTo(512));
            Assert.That(c.HasProjections, Is.True);
            Assert.That(c.ScaleQueries, Is.True);
            Assert.That(c.TiedEmbedding, Is.True);
            Assert.That(c.ParameterCount, Is.EqualTo(331_196_416L));
        });
        var small = Parse("""
            {"architectures":["OPTForCausalLM"],"do_layer_norm_before":true,"ffn_dim":3072,"hidden_size":768,"max_position_embeddings":2048,
             "model_type":"opt","num_attention_heads":12,"num_hidden_layers":12,"vocab_size":50272,"word_embed_proj_dim":768}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(small.NormPlacement, Is.EqualTo(NormPlacement.Pre));
            Assert.That(small.FinalNorm, Is.True);
            Assert.That(small.HasProjections, Is.False);
            Assert.That(small.ParameterCount, Is.EqualTo(125_239_296L));
        });
    }

    [Test]
    public void RopeParametersPerLayerType_TransformersV5()
    {
        var c = Parse("""
            {"architectures":["Gemma3ForCausalLM"],"head_dim":16,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
             "num_hidden_layers":2,"num_key_value_heads":2,"vocab_size":100,"sliding_window":8,
             "layer_types":["sliding_attention","full_attention"],
             "rope_parameters":{"full_attention":{"rope_type":"linear","factor":8.0,"rope_theta":1000000.0},
                                "sliding_attention":{"rope_type":"default","rope_theta":10000.0}}}
            """);
        Assert.Multiple(() =>
        {
            Assert.That(c.RopeTheta, Is.EqualTo(1e6f));
            Assert.That(c.LocalRopeTheta, Is.EqualTo(1e4f));
            Assert.That(c.RopeScaling.Type, Is.EqualTo(RopeScalingType.Linear));
            Assert.That(c.WindowOf(0), Is.EqualTo(8));
            Assert.That(c.WindowOf(1), Is.Null);
        });
    }
}
