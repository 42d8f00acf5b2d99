namespace LongDep.Models.HuggingFace;

/// <summary>Loads and saves whole Hugging Face checkpoint folders (config.json + safetensors).</summary>
public static class HuggingFaceModel
{
    /// <summary>Whether <paramref name="path"/> looks like a Hugging Face checkpoint folder (has config.json and safetensors weights).</summary>
    public static bool IsCheckpointFolder(string path) =>
        Directory.Exists(path) && File.Exists(Path.Combine(path, HfConfig.FileName)) && SafetensorsCheckpoint.Exists(path);

    /// <summary>
    /// Reads config.json and the safetensors weights of <paramref name="folder"/> into float32 weights
    /// (RoPE halves, as Hugging Face stores them).
    /// </summary>
    /// <exception cref="ModelFormatException">Anything wrong with the folder, the config or the weights.</exception>
    public static ModelWeights Load(string folder)
    {
        var cfg = HfConfig.Load(folder);
        using var src = SafetensorsCheckpoint.Open(folder);
        return Architectures.LoadWeights(src, cfg, ModelFormat.HuggingFace);
    }

    /// <summary>
    /// Writes <paramref name="weights"/> as config.json + safetensors in <paramref name="dtype"/> (sharded when
    /// <paramref name="maxShardBytes"/> &gt; 0 and needed). Weights held in the adjacent-pairs RoPE order are
    /// permuted to halves on the way out; the tied output head is not stored.
    /// </summary>
    public static void Save(string folder, ModelWeights weights, TensorType dtype = TensorType.F16, long maxShardBytes = 0,
        int? bosTokenId = null, int? eosTokenId = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        weights.Validate(folder);
        var cfg = weights.Config with
        {
            Rope = RopeStyle.Halves,
            TiedEmbedding = weights.Config.TiedEmbedding || ReferenceEquals(weights.Output, weights.TokenEmbedding),
        };
        HfConfig.Write(folder, cfg, dtype, bosTokenId, eosTokenId);
        SafetensorsWriter.Write(folder, Architectures.TensorsFor(weights, ModelFormat.HuggingFace), dtype, maxShardBytes);
    }
}
