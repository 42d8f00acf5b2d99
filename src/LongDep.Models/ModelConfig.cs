namespace LongDep.Models;

/// <summary>How RoPE pairs the dimensions of a head (SPEC §6).</summary>
public enum RopeStyle
{
    /// <summary>Rotate adjacent pairs (x[2i], x[2i+1]): GGUF llama-architecture files.</summary>
    AdjacentPairs,
    /// <summary>Rotate halves (x[i], x[i + d/2]): GGUF qwen2, Hugging Face checkpoints.</summary>
    Halves,
}

/// <summary>The facts of a Llama-family decoder, read from the model file's metadata.</summary>
public sealed record ModelConfig
{
    public required string Architecture { get; init; }   // "llama" | "qwen2"
    public required int Layers { get; init; }
    public required int Dim { get; init; }               // embedding / hidden size
    public required int FfDim { get; init; }             // SwiGLU inner size
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required float RmsEps { get; init; }
    public required float RopeTheta { get; init; }
    public required RopeStyle Rope { get; init; }
    public required bool QkvBias { get; init; }
    public required bool TiedEmbedding { get; init; }

    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;

    /// <summary>Parameter count of the weights this config implies (output head counted once when tied).</summary>
    public long ParameterCount
    {
        get
        {
            long perLayer = 2L * Dim                                 // two norms
                + (long)Dim * QDim + 2L * Dim * KvDim + (long)QDim * Dim // q, k, v, o
                + (QkvBias ? QDim + 2L * KvDim : 0)
                + 3L * Dim * FfDim;
            long embed = (long)VocabSize * Dim;
            return embed + Layers * perLayer + Dim + (TiedEmbedding ? 0 : embed);
        }
    }

    /// <summary>Checks the shape facts; throws <see cref="ModelFormatException"/> naming what is wrong.</summary>
    public void Validate(string source)
    {
        void Need(bool ok, string what)
        {
            if (!ok) throw new ModelFormatException(source, what);
        }
        Need(Architecture is "llama" or "qwen2", $"unsupported architecture '{Architecture}' (supported: llama, qwen2)");
        Need(Layers is > 0 and <= 1024, $"layer count {Layers} is out of range 1..1024");
        Need(Dim is > 0 and <= 65536, $"embedding size {Dim} is out of range 1..65536");
        Need(FfDim is > 0 and <= 1 << 20, $"feed-forward size {FfDim} is out of range");
        Need(Heads is > 0 and <= 1024, $"head count {Heads} is out of range");
        Need(KvHeads > 0 && KvHeads <= Heads && Heads % KvHeads == 0, $"KV head count {KvHeads} must divide head count {Heads}");
        Need(HeadDim is > 0 and <= 1024 && HeadDim % 2 == 0, $"head dimension {HeadDim} must be even and at most 1024");
        Need(VocabSize is > 0 and <= 1 << 24, $"vocabulary size {VocabSize} is out of range");
        Need(RmsEps > 0 && float.IsFinite(RmsEps), $"RMSNorm epsilon {RmsEps} must be positive");
        Need(RopeTheta > 0 && float.IsFinite(RopeTheta), $"RoPE base {RopeTheta} must be positive");
    }
}

/// <summary>A model file that cannot be used: names the file and what is wrong.</summary>
public sealed class ModelFormatException(string source, string problem, Exception? inner = null)
    : Exception($"{source}: {problem}", inner)
{
    public string Source_ { get; } = source;
    public string Problem { get; } = problem;
}
