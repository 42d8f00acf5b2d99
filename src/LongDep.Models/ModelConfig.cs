namespace LongDep.Models;

/// <summary>How RoPE pairs the dimensions of a head (SPEC §6).</summary>
public enum RopeStyle
{
    /// <summary>Rotate adjacent pairs (x[2i], x[2i+1]): GGUF llama-architecture files.</summary>
    AdjacentPairs,
    /// <summary>Rotate halves (x[i], x[i + d/2]): other GGUF architectures, Hugging Face checkpoints.</summary>
    Halves,
}

/// <summary>The normalization a block uses.</summary>
public enum NormKind
{
    /// <summary>RMSNorm: y = w ⊙ x / sqrt(mean(x²) + eps). (Gemma's "1 + w" form is stored with the 1 added at load.)</summary>
    Rms,
    /// <summary>LayerNorm with weight and bias: y = w ⊙ (x − mean) / sqrt(var + eps) + b (OPT).</summary>
    LayerNorm,
}

/// <summary>Where the norms of a decoder block sit.</summary>
public enum NormPlacement
{
    /// <summary>x = Norm(h) before attention and before the feed-forward; h += f(x) (Llama, Qwen, Phi-3, OPT ≥ 1.3B and 125m).</summary>
    Pre,
    /// <summary>h = Norm(h + f(h)) after each residual add, no final norm (OPT-350m: <c>do_layer_norm_before = false</c>).</summary>
    Post,
    /// <summary>Pre-norms plus a norm of each sub-block's output before its residual add (Gemma 2/3).</summary>
    Sandwich,
}

/// <summary>How positions enter the model.</summary>
public enum PositionKind
{
    /// <summary>Rotary embeddings on q and k.</summary>
    Rope,
    /// <summary>A learned position table added to the token embedding (OPT).</summary>
    Learned,
}

/// <summary>The feed-forward block.</summary>
public enum FeedForwardKind
{
    /// <summary>down(silu(gate x) ⊙ up x).</summary>
    SwiGlu,
    /// <summary>down(gelu_tanh(gate x) ⊙ up x) (Gemma).</summary>
    GeGluTanh,
    /// <summary>fc2(relu(fc1 x + b1)) + b2 (OPT): no gate, "up" is fc1 and "down" is fc2.</summary>
    Relu,
}

/// <summary>RoPE frequency scaling types (transformers' <c>rope_type</c>, llama.cpp's <c>rope.scaling.type</c>).</summary>
public enum RopeScalingType { None, Linear, Dynamic, Llama3, Yarn, LongRope }

/// <summary>
/// RoPE scaling as the model's config says. Which fields matter depends on <see cref="Type"/>:
/// linear (<see cref="Factor"/>), dynamic NTK (<see cref="Factor"/>, <see cref="OriginalContext"/>; depends on the
/// sequence length), llama3 (<see cref="Factor"/>, <see cref="LowFreqFactor"/>, <see cref="HighFreqFactor"/>,
/// <see cref="OriginalContext"/>, or per-frequency <see cref="FrequencyFactors"/> from a GGUF <c>rope_freqs</c> tensor),
/// yarn (<see cref="Factor"/>, <see cref="OriginalContext"/>, <see cref="BetaFast"/>, <see cref="BetaSlow"/>,
/// <see cref="AttentionFactor"/>), longrope (<see cref="ShortFactors"/>, <see cref="LongFactors"/>,
/// <see cref="OriginalContext"/>, <see cref="AttentionFactor"/>).
/// </summary>
public sealed record RopeScaling
{
    public static RopeScaling None { get; } = new() { Type = RopeScalingType.None };

    public required RopeScalingType Type { get; init; }
    public double Factor { get; init; } = 1.0;
    /// <summary>The context length the model was trained at before scaling (0: not given).</summary>
    public int OriginalContext { get; init; }
    public double LowFreqFactor { get; init; } = 1.0;
    public double HighFreqFactor { get; init; } = 4.0;
    public double BetaFast { get; init; } = 32.0;
    public double BetaSlow { get; init; } = 1.0;
    /// <summary>Multiplier of cos and sin (yarn, longrope); null: the type's default formula.</summary>
    public double? AttentionFactor { get; init; }
    /// <summary>Per-frequency divisors of the inverse frequencies (llama3 in GGUF: the <c>rope_freqs</c> tensor), length d/2.</summary>
    public float[]? FrequencyFactors { get; init; }
    public float[]? ShortFactors { get; init; }
    public float[]? LongFactors { get; init; }

    /// <summary>Whether the frequencies depend on the length of the sequence being run (dynamic NTK, longrope).</summary>
    public bool DependsOnLength => Type is RopeScalingType.Dynamic or RopeScalingType.LongRope;

    public override string ToString() => Type switch
    {
        RopeScalingType.None => "none",
        RopeScalingType.Linear => $"linear ×{Factor:0.###}",
        RopeScalingType.Dynamic => $"dynamic ×{Factor:0.###} from {OriginalContext}",
        RopeScalingType.Llama3 => FrequencyFactors is not null ? "llama3 (rope_freqs)" : $"llama3 ×{Factor:0.###} from {OriginalContext}",
        RopeScalingType.Yarn => $"yarn ×{Factor:0.###} from {OriginalContext}",
        RopeScalingType.LongRope => $"longrope from {OriginalContext}",
        _ => Type.ToString(),
    };
}

/// <summary>
/// The facts of a decoder-only transformer, read from the model file's metadata: its sizes and a small, explicit
/// description of its block (norms and where they sit, positions, attention extras, feed-forward kind, embedding
/// scale, projections, soft-caps). Defaults describe a Llama block; each family sets what differs
/// (<see cref="Architectures"/> maps its tensors). One forward per backend reads this description.
/// </summary>
public sealed record ModelConfig
{
    public required string Architecture { get; init; }
    public required int Layers { get; init; }
    /// <summary>Hidden size of the residual stream.</summary>
    public required int Dim { get; init; }
    /// <summary>Inner size of the feed-forward block.</summary>
    public required int FfDim { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    /// <summary>The context length the model was trained at (max_position_embeddings, context_length).</summary>
    public required int ContextLength { get; init; }
    /// <summary>Epsilon of every norm (RMSNorm or LayerNorm).</summary>
    public required float NormEps { get; init; }
    public required float RopeTheta { get; init; }
    public required RopeStyle Rope { get; init; }
    public required bool QkvBias { get; init; }
    public required bool TiedEmbedding { get; init; }

    // ---- block description (defaults: Llama) ----
    public NormKind Norm { get; init; } = NormKind.Rms;
    public NormPlacement NormPlacement { get; init; } = NormPlacement.Pre;
    /// <summary>Whether the last hidden state is normalized before the output head (false for post-norm OPT).</summary>
    public bool FinalNorm { get; init; } = true;
    public PositionKind Positions { get; init; } = PositionKind.Rope;
    /// <summary>Learned positions: the table row of position 0 (OPT: 2).</summary>
    public int PositionOffset { get; init; }
    /// <summary>Learned positions: rows of the position table (positions past <c>rows − offset − 1</c> cannot be run).</summary>
    public int PositionRows { get; init; }
    public RopeScaling RopeScaling { get; init; } = RopeScaling.None;
    /// <summary>RoPE base of sliding-window layers when it differs (Gemma 3: 10000, without scaling).</summary>
    public float? LocalRopeTheta { get; init; }
    /// <summary>Bias on the attention output projection (OPT).</summary>
    public bool OutputProjectionBias { get; init; }
    /// <summary>Biases on the feed-forward projections (OPT's fc1, fc2).</summary>
    public bool FeedForwardBias { get; init; }
    /// <summary>Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3), weights [HeadDim].</summary>
    public bool QkNorm { get; init; }
    /// <summary>Attention score scale; null: 1/sqrt(HeadDim). Gemma: query_pre_attn_scalar^−½.</summary>
    public float? AttentionScale { get; init; }
    /// <summary>The scale is applied to q after its projection and bias (OPT), not to the scores.</summary>
    public bool ScaleQueries { get; init; }
    /// <summary>Scores become cap · tanh(scores / cap) after scaling (Gemma 2).</summary>
    public float? AttentionSoftCap { get; init; }
    /// <summary>Logits become cap · tanh(logits / cap) (Gemma 2).</summary>
    public float? FinalSoftCap { get; init; }
    /// <summary>Sliding-window attention: query t sees keys s with t − s &lt; window, on the layers <see cref="SlidingLayers"/> marks.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Which layers use <see cref="SlidingWindow"/>; null: all of them.</summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }
    /// <summary>The token embedding is multiplied by this (Gemma: sqrt(Dim)).</summary>
    public float EmbedScale { get; init; } = 1f;
    public FeedForwardKind FeedForward { get; init; } = FeedForwardKind.SwiGlu;
    /// <summary>Width of the token embedding when it differs from <see cref="Dim"/> (OPT-350m: 512, with project_in/out); null: Dim.</summary>
    public int? EmbedDim { get; init; }

    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;
    /// <summary>Width of the token embedding and output head rows.</summary>
    public int EmbeddingWidth => EmbedDim ?? Dim;
    /// <summary>Whether the embedding is projected in and out (EmbedDim set and different from Dim).</summary>
    public bool HasProjections => EmbedDim is int e && e != Dim;
    /// <summary>The score scale the attention applies (to the scores, or to q when <see cref="ScaleQueries"/>).</summary>
    public float ScoreScale => AttentionScale ?? (float)(1.0 / Math.Sqrt(HeadDim));
    public bool HasGate => FeedForward != FeedForwardKind.Relu;
    public bool NormHasBias => Norm == NormKind.LayerNorm;

    /// <summary>The sliding window of <paramref name="layer"/>, or null when it attends to every earlier key.</summary>
    public int? WindowOf(int layer) =>
        SlidingWindow is int w && (SlidingLayers is null || (layer < SlidingLayers.Count && SlidingLayers[layer])) ? w : null;

    /// <summary>Whether any layer uses a sliding window.</summary>
    public bool HasSlidingWindow => SlidingWindow is not null && (SlidingLayers is null || SlidingLayers.Any(x => x));

    /// <summary>Parameter count of the weights this config implies (output head counted once when tied).</summary>
    public long ParameterCount
    {
        get
        {
            long normSize = NormHasBias ? 2L * Dim : Dim;
            int norms = NormPlacement == NormPlacement.Sandwich ? 4 : 2;
            long perLayer = norms * normSize
                + (long)Dim * QDim + 2L * Dim * KvDim + (long)QDim * Dim // q, k, v, o
                + (QkvBias ? QDim + 2L * KvDim : 0)
                + (OutputProjectionBias ? Dim : 0)
                + (QkNorm ? 2L * HeadDim : 0)
                + (HasGate ? 3L : 2L) * Dim * FfDim
                + (FeedForwardBias ? FfDim + (long)Dim : 0);
            long embed = (long)VocabSize * EmbeddingWidth;
            long extra = (FinalNorm ? normSize : 0)
                + (Positions == PositionKind.Learned ? (long)PositionRows * Dim : 0)
                + (HasProjections ? 2L * Dim * EmbeddingWidth : 0);
            return embed + Layers * perLayer + extra + (TiedEmbedding ? 0 : embed);
        }
    }

    /// <summary>Checks the shape facts; throws <see cref="ModelFormatException"/> naming what is wrong.</summary>
    public void Validate(string source)
    {
        void Need(bool ok, string what)
        {
            if (!ok) throw new ModelFormatException(source, what);
        }
        Need(Architectures.Supported.Contains(Architecture), $"unsupported architecture '{Architecture}' (supported: {string.Join(", ", Architectures.Supported)})");
        Need(Layers is > 0 and <= 1024, $"layer count {Layers} is out of range 1..1024");
        Need(Dim is > 0 and <= 65536, $"embedding size {Dim} is out of range 1..65536");
        Need(FfDim is > 0 and <= 1 << 20, $"feed-forward size {FfDim} is out of range");
        Need(Heads is > 0 and <= 1024, $"head count {Heads} is out of range");
        Need(KvHeads > 0 && KvHeads <= Heads && Heads % KvHeads == 0, $"KV head count {KvHeads} must divide head count {Heads}");
        Need(HeadDim is > 0 and <= 1024 && HeadDim % 2 == 0, $"head dimension {HeadDim} must be even and at most 1024");
        Need(VocabSize is > 0 and <= 1 << 24, $"vocabulary size {VocabSize} is out of range");
        Need(ContextLength > 0, $"context length {ContextLength} must be positive");
        Need(NormEps > 0 && float.IsFinite(NormEps), $"norm epsilon {NormEps} must be positive");
        Need(RopeTheta > 0 && float.IsFinite(RopeTheta), $"RoPE base {RopeTheta} must be positive");
        Need(LocalRopeTheta is null || (LocalRopeTheta > 0 && float.IsFinite(LocalRopeTheta.Value)), $"local RoPE base {LocalRopeTheta} must be positive");
        Need(EmbedScale > 0 && float.IsFinite(EmbedScale), $"embedding scale {EmbedScale} must be positive");
        Need(AttentionScale is null || (AttentionScale > 0 && float.IsFinite(AttentionScale.Value)), $"attention scale {AttentionScale} must be positive");
        Need(AttentionSoftCap is null || (AttentionSoftCap > 0 && float.IsFinite(AttentionSoftCap.Value)), $"attention soft-cap {AttentionSoftCap} must be positive");
        Need(FinalSoftCap is null || (FinalSoftCap > 0 && float.IsFinite(FinalSoftCap.Value)), $"final soft-cap {FinalSoftCap} must be positive");
        Need(SlidingWindow is null || SlidingWindow > 0, $"sliding window {SlidingWindow} must be positive");
        Need(SlidingLayers is null || SlidingLayers.Count == Layers, $"the sliding-window layer list has {SlidingLayers?.Count} entries for {Layers} layers");
        Need(EmbedDim is null || EmbedDim is > 0 and <= 65536, $"embedding width {EmbedDim} is out of range 1..65536");
        Need(!HasProjections || Positions == PositionKind.Learned, "input/output projections are supported with learned positions (OPT) only");
        Need(NormPlacement != NormPlacement.Post || !FinalNorm, "a post-norm block has no final norm");
        if (Positions == PositionKind.Learned)
        {
            Need(PositionOffset >= 0 && PositionRows > PositionOffset, $"learned position table of {PositionRows} rows with offset {PositionOffset} holds no position");
            Need(RopeScaling.Type == RopeScalingType.None, "RoPE scaling given for a model with learned positions");
        }
        var s = RopeScaling;
        int half = HeadDim / 2;
        switch (s.Type)
        {
            case RopeScalingType.None:
                break;
            case RopeScalingType.Linear:
                Need(s.Factor > 0 && double.IsFinite(s.Factor), $"linear RoPE scaling factor {s.Factor} must be positive");
                break;
            case RopeScalingType.Dynamic:
                Need(s.Factor >= 1 && double.IsFinite(s.Factor), $"dynamic RoPE scaling factor {s.Factor} must be at least 1");
                Need(s.OriginalContext > 0, "dynamic RoPE scaling needs the original context length");
                break;
            case RopeScalingType.Llama3:
                if (s.FrequencyFactors is not null)
                    Need(s.FrequencyFactors.Length == half && s.FrequencyFactors.All(f => f > 0 && float.IsFinite(f)),
                        $"rope_freqs holds {s.FrequencyFactors.Length} factors, expected {half} positive ones (head dimension / 2)");
                else
                {
                    Need(s.Factor > 0 && s.OriginalContext > 0, "llama3 RoPE scaling needs factor and original_max_position_embeddings");
                    Need(s.HighFreqFactor > s.LowFreqFactor && s.LowFreqFactor > 0, $"llama3 RoPE scaling needs high_freq_factor ({s.HighFreqFactor}) > low_freq_factor ({s.LowFreqFactor}) > 0");
                }
                break;
            case RopeScalingType.Yarn:
                Need(s.Factor >= 1 && double.IsFinite(s.Factor), $"yarn RoPE scaling factor {s.Factor} must be at least 1");
                Need(s.OriginalContext > 0, "yarn RoPE scaling needs the original context length");
                Need(s.BetaFast > s.BetaSlow && s.BetaSlow > 0, $"yarn needs beta_fast ({s.BetaFast}) > beta_slow ({s.BetaSlow}) > 0");
                break;
            case RopeScalingType.LongRope:
                Need(s.OriginalContext > 0, "longrope RoPE scaling needs original_max_position_embeddings");
                Need(s.ShortFactors?.Length == half && s.LongFactors?.Length == half,
                    $"longrope needs short and long factors of {half} values each (head dimension / 2), found {s.ShortFactors?.Length ?? 0} and {s.LongFactors?.Length ?? 0}");
                break;
        }
    }
}

/// <summary>A model file that cannot be used: names the file and what is wrong.</summary>
public sealed class ModelFormatException(string source, string problem, Exception? inner = null)
    : Exception($"{source}: {problem}", inner)
{
    public string Source_ { get; } = source;
    public string Problem { get; } = problem;
}
