namespace LongDep.Models;

/// <summary>
/// One decoder layer's weights. Matrices are <see cref="WeightMatrix"/>es in their file's element type (F32, F16,
/// BF16 or quantized blocks), row-major [out, in] (y = W x), as both GGUF and safetensors store them; norm weights and
/// biases are float32. Q and K rows are in the order the file's RoPE style expects (see <see cref="ModelConfig.Rope"/>).
/// Which optional tensors are present follows the block description in <see cref="ModelConfig"/>.
/// </summary>
public sealed class LayerWeights
{
    public required float[] AttnNorm { get; init; }   // [Dim]
    public float[]? AttnNormBias { get; init; }        // [Dim] (LayerNorm)
    public required WeightMatrix Wq { get; init; }         // [QDim, Dim]
    public required WeightMatrix Wk { get; init; }         // [KvDim, Dim]
    public required WeightMatrix Wv { get; init; }         // [KvDim, Dim]
    public required WeightMatrix Wo { get; init; }         // [Dim, QDim]
    public float[]? Bq { get; init; }                  // [QDim]
    public float[]? Bk { get; init; }                  // [KvDim]
    public float[]? Bv { get; init; }                  // [KvDim]
    public float[]? Bo { get; init; }                  // [Dim]      (OutputProjectionBias)
    public float[]? QNorm { get; init; }               // [HeadDim]  (QkNorm)
    public float[]? KNorm { get; init; }               // [HeadDim]  (QkNorm)
    public float[]? PostAttnNorm { get; init; }        // [Dim]      (Sandwich)
    public required float[] FfnNorm { get; init; }    // [Dim]
    public float[]? FfnNormBias { get; init; }         // [Dim] (LayerNorm)
    public WeightMatrix? WGate { get; init; }               // [FfDim, Dim] (absent for the ReLU MLP)
    public required WeightMatrix WUp { get; init; }        // [FfDim, Dim] (OPT: fc1)
    public required WeightMatrix WDown { get; init; }      // [Dim, FfDim] (OPT: fc2)
    public float[]? BUp { get; init; }                 // [FfDim]    (FeedForwardBias)
    public float[]? BDown { get; init; }               // [Dim]      (FeedForwardBias)
    public float[]? PostFfnNorm { get; init; }         // [Dim]      (Sandwich)
}

/// <summary>
/// All weights of a decoder model: matrices in their file's element type (left in the file and read when needed when
/// loaded from one),
/// vectors in float32. <see cref="WeightMatrix.ToFloat32"/> yields any matrix as float32 for a consumer that needs it.
/// </summary>
public sealed class ModelWeights
{
    public required ModelConfig Config { get; init; }
    public required WeightMatrix TokenEmbedding { get; init; }  // [Vocab, EmbeddingWidth]
    public required LayerWeights[] Layers { get; init; }
    /// <summary>[Dim]; null when the config has no final norm (post-norm OPT).</summary>
    public required float[]? OutputNorm { get; init; }
    public float[]? OutputNormBias { get; init; }           // [Dim] (LayerNorm)
    /// <summary>[Vocab, EmbeddingWidth]; the same tensor as <see cref="TokenEmbedding"/> when the model ties them (<see cref="WeightMatrix.IsSameTensor"/>).</summary>
    public required WeightMatrix Output { get; init; }
    /// <summary>Learned positions [PositionRows, Dim] (OPT).</summary>
    public float[]? PositionEmbedding { get; init; }
    /// <summary>[Dim, EmbeddingWidth]: embedding → hidden (OPT-350m's project_in).</summary>
    public WeightMatrix? ProjectIn { get; init; }
    /// <summary>[EmbeddingWidth, Dim]: hidden → output head (OPT-350m's project_out).</summary>
    public WeightMatrix? ProjectOut { get; init; }

    /// <summary>The same arrays under another config (e.g. another RoPE base).</summary>
    public ModelWeights WithConfig(ModelConfig config) => new()
    {
        Config = config,
        TokenEmbedding = TokenEmbedding,
        Layers = Layers,
        OutputNorm = OutputNorm,
        OutputNormBias = OutputNormBias,
        Output = Output,
        PositionEmbedding = PositionEmbedding,
        ProjectIn = ProjectIn,
        ProjectOut = ProjectOut,
    };

    /// <summary>Every tensor with its name, for size accounting (the tied head once); vectors as float32 matrices.</summary>
    public IEnumerable<(string Name, WeightMatrix Data)> Tensors()
    {
        static WeightMatrix? V(float[]? a) => a is null ? null : WeightMatrix.FromFloat32(a);
        yield return ("token embedding", TokenEmbedding);
        if (PositionEmbedding is not null) yield return ("position embedding", PositionEmbedding);
        if (ProjectIn is not null) yield return ("project in", ProjectIn);
        if (ProjectOut is not null) yield return ("project out", ProjectOut);
        for (int i = 0; i < Layers.Length; i++)
        {
            var l = Layers[i];
            foreach (var (n, a) in new (string, WeightMatrix?)[]
            {
                ("attention norm", V(l.AttnNorm)), ("attention norm bias", V(l.AttnNormBias)), ("q", l.Wq), ("k", l.Wk), ("v", l.Wv),
                ("o", l.Wo), ("q bias", V(l.Bq)), ("k bias", V(l.Bk)), ("v bias", V(l.Bv)), ("o bias", V(l.Bo)), ("q norm", V(l.QNorm)),
                ("k norm", V(l.KNorm)), ("post-attention norm", V(l.PostAttnNorm)), ("ffn norm", V(l.FfnNorm)), ("ffn norm bias", V(l.FfnNormBias)),
                ("gate", l.WGate), ("up", l.WUp), ("down", l.WDown), ("up bias", V(l.BUp)), ("down bias", V(l.BDown)),
                ("post-ffn norm", V(l.PostFfnNorm)),
            })
                if (a is not null) yield return ($"layer {i} {n}", a);
        }
        if (OutputNorm is not null) yield return ("output norm", OutputNorm);
        if (OutputNormBias is not null) yield return ("output norm bias", OutputNormBias);
        if (!Output.IsSameTensor(TokenEmbedding)) yield return ("output", Output);
    }

    /// <summary>Bytes the weights hold in host memory in their stored types (bytes left in the file included, the tied head once).</summary>
    public long ByteSize => Tensors().Sum(t => t.Data.ByteSize);

    /// <summary>Checks every array length against the config; throws <see cref="ModelFormatException"/> on a mismatch.</summary>
    public void Validate(string source)
    {
        var c = Config;
        void Len(object? a, long n, string name)
        {
            long count = a switch
            {
                null => throw new ModelFormatException(source, $"tensor {name} is missing"),
                float[] f => f.LongLength,
                WeightMatrix m => m.ElementCount,
                _ => throw new ArgumentException($"tensor {name} has an unknown representation"),
            };
            if (count != n) throw new ModelFormatException(source, $"tensor {name} has {count} elements, expected {n}");
        }
        void Opt(bool wanted, object? a, long n, string name)
        {
            if (wanted) Len(a, n, name);
            else if (a is not null) throw new ModelFormatException(source, $"tensor {name} is present but the config has none");
        }
        int e = c.EmbeddingWidth;
        Len(TokenEmbedding, (long)c.VocabSize * e, "token embedding");
        Opt(c.FinalNorm, OutputNorm, c.Dim, "output norm");
        Opt(c.FinalNorm && c.NormHasBias, OutputNormBias, c.Dim, "output norm bias");
        Len(Output, (long)c.VocabSize * e, "output");
        Opt(c.Positions == PositionKind.Learned, PositionEmbedding, (long)c.PositionRows * c.Dim, "position embedding");
        Opt(c.HasProjections, ProjectIn, (long)c.Dim * e, "project in");
        Opt(c.HasProjections, ProjectOut, (long)e * c.Dim, "project out");
        if (Layers.Length != c.Layers) throw new ModelFormatException(source, $"{Layers.Length} layers loaded, expected {c.Layers}");
        bool sandwich = c.NormPlacement == NormPlacement.Sandwich;
        for (int i = 0; i < Layers.Length; i++)
        {
            var l = Layers[i];
            Len(l.AttnNorm, c.Dim, $"layer {i} attention norm");
            Opt(c.NormHasBias, l.AttnNormBias, c.Dim, $"layer {i} attention norm bias");
            Len(l.Wq, (long)c.QDim * c.Dim, $"layer {i} q");
            Len(l.Wk, (long)c.KvDim * c.Dim, $"layer {i} k");
            Len(l.Wv, (long)c.KvDim * c.Dim, $"layer {i} v");
            Len(l.Wo, (long)c.Dim * c.QDim, $"layer {i} o");
            Opt(c.QkvBias, l.Bq, c.QDim, $"layer {i} q bias");
            Opt(c.QkvBias, l.Bk, c.KvDim, $"layer {i} k bias");
            Opt(c.QkvBias, l.Bv, c.KvDim, $"layer {i} v bias");
            Opt(c.OutputProjectionBias, l.Bo, c.Dim, $"layer {i} o bias");
            Opt(c.QkNorm, l.QNorm, c.HeadDim, $"layer {i} q norm");
            Opt(c.QkNorm, l.KNorm, c.HeadDim, $"layer {i} k norm");
            Opt(sandwich, l.PostAttnNorm, c.Dim, $"layer {i} post-attention norm");
            Len(l.FfnNorm, c.Dim, $"layer {i} ffn norm");
            Opt(c.NormHasBias, l.FfnNormBias, c.Dim, $"layer {i} ffn norm bias");
            Opt(c.HasGate, l.WGate, (long)c.FfDim * c.Dim, $"layer {i} gate");
            Len(l.WUp, (long)c.FfDim * c.Dim, $"layer {i} up");
            Len(l.WDown, (long)c.Dim * c.FfDim, $"layer {i} down");
            Opt(c.FeedForwardBias, l.BUp, c.FfDim, $"layer {i} up bias");
            Opt(c.FeedForwardBias, l.BDown, c.Dim, $"layer {i} down bias");
            Opt(sandwich, l.PostFfnNorm, c.Dim, $"layer {i} post-ffn norm");
        }
    }
}
