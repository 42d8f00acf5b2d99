namespace LongDep.Models.HuggingFace;

/// <summary>How a Hugging Face checkpoint folder stores its weights.</summary>
public enum HfWeightsFormat
{
    /// <summary><c>model.safetensors</c> (or its shards and index).</summary>
    Safetensors,
    /// <summary><c>pytorch_model.bin</c> (or its shards and index), the zip archives torch.save writes.</summary>
    PyTorch,
}

/// <summary>Loads and saves whole Hugging Face checkpoint folders (config.json + safetensors or PyTorch weights).</summary>
public static class HuggingFaceModel
{
    /// <summary>
    /// Whether <paramref name="path"/> looks like a Hugging Face checkpoint folder: config.json and safetensors or
    /// PyTorch (<c>pytorch_model*.bin</c>) weights.
    /// </summary>
    public static bool IsCheckpointFolder(string path) =>
        Directory.Exists(path) && File.Exists(Path.Combine(path, HfConfig.FileName)) && WeightsFormatOf(path) is not null;

    /// <summary>
    /// The weights the folder holds: safetensors when present (transformers prefers them), else PyTorch .bin files,
    /// else null.
    /// </summary>
    public static HfWeightsFormat? WeightsFormatOf(string folder) =>
        SafetensorsCheckpoint.Exists(folder) ? HfWeightsFormat.Safetensors
        : PyTorchCheckpoint.Exists(folder) ? HfWeightsFormat.PyTorch
        : null;

    /// <summary>Opens the folder's weights (see <see cref="WeightsFormatOf"/>).</summary>
    /// <exception cref="ModelFormatException">No weights, or a weights file is malformed.</exception>
    public static ITensorSource OpenWeights(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
            throw new ModelFormatException(folder, "folder not found (expected a Hugging Face checkpoint folder with config.json and model.safetensors or pytorch_model.bin)");
        return WeightsFormatOf(folder) switch
        {
            HfWeightsFormat.Safetensors => SafetensorsCheckpoint.Open(folder),
            HfWeightsFormat.PyTorch => PyTorchCheckpoint.Open(folder),
            _ => throw new ModelFormatException(folder,
                $"no weights: looked for {SafetensorsFormat.SingleFile}, {SafetensorsFormat.IndexFile}, {PyTorchCheckpoint.SingleFile} and {PyTorchCheckpoint.IndexFile}"),
        };
    }

    /// <summary>
    /// Reads config.json and the weights of <paramref name="folder"/> into float32 weights
    /// (RoPE halves, as Hugging Face stores them).
    /// </summary>
    /// <exception cref="ModelFormatException">Anything wrong with the folder, the config or the weights.</exception>
    public static ModelWeights Load(string folder)
    {
        var cfg = HfConfig.Load(folder);
        using var src = OpenWeights(folder);
        return Architectures.LoadWeights(src, cfg, ModelFormat.HuggingFace);
    }

    /// <summary>
    /// Writes <paramref name="weights"/> as config.json + safetensors (or PyTorch .bin when <paramref name="format"/>
    /// says so) in <paramref name="dtype"/>, sharded when <paramref name="maxShardBytes"/> &gt; 0 and needed. Weights
    /// held in the adjacent-pairs RoPE order are permuted to halves on the way out; the tied output head is not stored.
    /// PyTorch weights are written only after any safetensors weights in the folder are deleted (those would take precedence).
    /// </summary>
    public static void Save(string folder, ModelWeights weights, TensorType dtype = TensorType.F16, long maxShardBytes = 0,
        int? bosTokenId = null, int? eosTokenId = null, HfWeightsFormat format = HfWeightsFormat.Safetensors)
    {
        ArgumentNullException.ThrowIfNull(weights);
        weights.Validate(folder);
        var cfg = weights.Config with
        {
            Rope = RopeStyle.Halves,
            TiedEmbedding = weights.Config.TiedEmbedding || ReferenceEquals(weights.Output, weights.TokenEmbedding),
        };
        HfConfig.Write(folder, cfg, dtype, bosTokenId, eosTokenId);
        var tensors = Architectures.TensorsFor(weights, ModelFormat.HuggingFace);
        if (format == HfWeightsFormat.PyTorch)
        {
            DeleteShards(folder, SafetensorsFormat.SingleFile, SafetensorsFormat.IndexFile, "model-*-of-*.safetensors");
            PyTorchWriter.Write(folder, tensors, dtype, maxShardBytes);
        }
        else
        {
            SafetensorsWriter.Write(folder, tensors, dtype, maxShardBytes);
        }
    }

    private static void DeleteShards(string folder, string single, string index, string shardPattern)
    {
        File.Delete(Path.Combine(folder, single));
        File.Delete(Path.Combine(folder, index));
        foreach (var f in Directory.GetFiles(folder, shardPattern)) File.Delete(f);
    }
}
