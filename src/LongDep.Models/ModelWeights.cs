namespace LongDep.Models;

/// <summary>
/// One decoder layer's weights in float32. Matrices are row-major [out, in] (y = W x), as both GGUF and
/// safetensors store them. Q and K rows are in the order the file's RoPE style expects (see <see cref="ModelConfig.Rope"/>).
/// </summary>
public sealed class LayerWeights
{
    public required float[] AttnNorm { get; init; }   // [Dim]
    public required float[] Wq { get; init; }         // [QDim, Dim]
    public required float[] Wk { get; init; }         // [KvDim, Dim]
    public required float[] Wv { get; init; }         // [KvDim, Dim]
    public required float[] Wo { get; init; }         // [Dim, QDim]
    public float[]? Bq { get; init; }                  // [QDim]
    public float[]? Bk { get; init; }                  // [KvDim]
    public float[]? Bv { get; init; }                  // [KvDim]
    public required float[] FfnNorm { get; init; }    // [Dim]
    public required float[] WGate { get; init; }      // [FfDim, Dim]
    public required float[] WUp { get; init; }        // [FfDim, Dim]
    public required float[] WDown { get; init; }      // [Dim, FfDim]
}

/// <summary>All weights of a Llama-family model in float32, dequantized at load.</summary>
public sealed class ModelWeights
{
    public required ModelConfig Config { get; init; }
    public required float[] TokenEmbedding { get; init; }  // [Vocab, Dim]
    public required LayerWeights[] Layers { get; init; }
    public required float[] OutputNorm { get; init; }      // [Dim]
    /// <summary>[Vocab, Dim]; the same array as <see cref="TokenEmbedding"/> when the model ties them.</summary>
    public required float[] Output { get; init; }

    /// <summary>Checks every array length against the config; throws <see cref="ModelFormatException"/> on a mismatch.</summary>
    public void Validate(string source)
    {
        var c = Config;
        void Len(float[]? a, long n, string name)
        {
            if (a is null) throw new ModelFormatException(source, $"tensor {name} is missing");
            if (a.LongLength != n) throw new ModelFormatException(source, $"tensor {name} has {a.LongLength} elements, expected {n}");
        }
        Len(TokenEmbedding, (long)c.VocabSize * c.Dim, "token embedding");
        Len(OutputNorm, c.Dim, "output norm");
        Len(Output, (long)c.VocabSize * c.Dim, "output");
        if (Layers.Length != c.Layers) throw new ModelFormatException(source, $"{Layers.Length} layers loaded, expected {c.Layers}");
        for (int i = 0; i < Layers.Length; i++)
        {
            var l = Layers[i];
            Len(l.AttnNorm, c.Dim, $"layer {i} attention norm");
            Len(l.Wq, (long)c.QDim * c.Dim, $"layer {i} q");
            Len(l.Wk, (long)c.KvDim * c.Dim, $"layer {i} k");
            Len(l.Wv, (long)c.KvDim * c.Dim, $"layer {i} v");
            Len(l.Wo, (long)c.Dim * c.QDim, $"layer {i} o");
            if (c.QkvBias)
            {
                Len(l.Bq, c.QDim, $"layer {i} q bias");
                Len(l.Bk, c.KvDim, $"layer {i} k bias");
                Len(l.Bv, c.KvDim, $"layer {i} v bias");
            }
            Len(l.FfnNorm, c.Dim, $"layer {i} ffn norm");
            Len(l.WGate, (long)c.FfDim * c.Dim, $"layer {i} gate");
            Len(l.WUp, (long)c.FfDim * c.Dim, $"layer {i} up");
            Len(l.WDown, (long)c.Dim * c.FfDim, $"layer {i} down");
        }
    }
}
