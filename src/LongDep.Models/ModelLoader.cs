using LongDep.Models.Gguf;
using LongDep.Models.HuggingFace;
using LongDep.Models.Tokenization;

namespace LongDep.Models;

/// <summary>What a model file says about itself, read without loading the weights (for <c>longdep inspect</c>).</summary>
public sealed record ModelDescription(string Path, ModelFormat Format, ModelConfig Config, IReadOnlyList<TensorInfo> Tensors,
    ITextTokenizer? Tokenizer, string? TokenizerProblem, string? Name)
{
    /// <summary>Whether the model's tokenizer configuration prepends BOS (the default of <c>--add-bos</c>, see <see cref="BosDefault"/>).</summary>
    public bool AddBosDefault { get; init; }
}

/// <summary>A model ready to run: config, float32 weights and its tokenizer.</summary>
public sealed record LoadedModel(string Path, ModelFormat Format, ModelWeights Weights, ITextTokenizer? Tokenizer, string? TokenizerProblem)
{
    public ModelConfig Config => Weights.Config;

    /// <summary>Whether the model's tokenizer configuration prepends BOS (the default of <c>--add-bos</c>, see <see cref="BosDefault"/>).</summary>
    public bool AddBosDefault { get; init; }

    /// <summary>The tokenizer, or a clear error when the model file has none (input_ids records still work without one).</summary>
    public ITextTokenizer RequireTokenizer() =>
        Tokenizer ?? throw new ModelFormatException(Path, $"the model has no usable tokenizer ({TokenizerProblem}); give records with input_ids instead of text");
}

/// <summary>Opens a GGUF file or a Hugging Face checkpoint folder (SPEC §6), whichever <c>--model</c> names.</summary>
public static class ModelLoader
{
    /// <summary>Reads the config, tensor list and tokenizer of <paramref name="path"/>.</summary>
    /// <exception cref="ModelFormatException">Missing path, not a model, unsupported architecture, corrupt file.</exception>
    public static ModelDescription Describe(string path)
    {
        if (FormatOf(path) == ModelFormat.Gguf)
        {
            using var file = GgufFile.Open(path);
            var cfg = GgufModel.ReadConfig(file);
            var (tok, problem) = TryTokenizer(() => GgufVocabularyKeys.Read(file) is { } v ? TokenizerFactory.FromGguf(v) : null, "the file has no tokenizer.ggml.* metadata");
            return new ModelDescription(path, ModelFormat.Gguf, cfg, file.TensorList, tok, problem, file.GetString("general.name"))
            {
                AddBosDefault = BosDefault.FromGguf(file, cfg.Architecture),
            };
        }
        var config = HfConfig.Load(path);
        using var ckpt = HuggingFaceModel.OpenWeights(path);
        var (t, p) = TryTokenizer(() => TokenizerFactory.FromHuggingFaceFolder(path), "no tokenizer file");
        return new ModelDescription(path, ModelFormat.HuggingFace, config, ckpt.Tensors.Values.OrderBy(x => x.Name, StringComparer.Ordinal).ToList(),
            t, p, System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(path)))
        {
            AddBosDefault = BosDefault.FromFolder(path, config.Architecture),
        };
    }

    /// <summary>Loads the weights (dequantized to float32) and the tokenizer of <paramref name="path"/>.</summary>
    /// <param name="path">A .gguf file or a checkpoint folder.</param>
    /// <param name="ropeTheta">Overrides the RoPE frequency base (<c>--rope-theta</c>).</param>
    public static LoadedModel Load(string path, float? ropeTheta = null)
    {
        ModelWeights weights;
        ITextTokenizer? tok;
        string? problem;
        bool addBos;
        ModelFormat format = FormatOf(path);
        if (format == ModelFormat.Gguf)
        {
            using var file = GgufFile.Open(path);
            weights = GgufModel.Load(file);
            (tok, problem) = TryTokenizer(() => GgufVocabularyKeys.Read(file) is { } v ? TokenizerFactory.FromGguf(v) : null, "the file has no tokenizer.ggml.* metadata");
            addBos = BosDefault.FromGguf(file, weights.Config.Architecture);
        }
        else
        {
            weights = HuggingFaceModel.Load(path);
            (tok, problem) = TryTokenizer(() => TokenizerFactory.FromHuggingFaceFolder(path), "no tokenizer file");
            addBos = BosDefault.FromFolder(path, weights.Config.Architecture);
        }
        if (tok is not null) CheckTokenizer(path, tok, weights.Config);
        if (ropeTheta is { } theta)
        {
            if (!(theta > 0) || !float.IsFinite(theta))
                throw new ModelFormatException(path, $"--rope-theta must be a positive number (got {theta})");
            weights = WithConfig(weights, weights.Config with { RopeTheta = theta });
        }
        return new LoadedModel(path, format, weights, tok, problem) { AddBosDefault = addBos && tok?.BosId is not null };
    }

    /// <summary>
    /// Refuses a tokenizer that can produce ids the weights have no embedding row for (a tokenizer and weights from
    /// different models): every id the tokenizer knows, BOS and EOS included, must be below the embedding's row count.
    /// </summary>
    /// <exception cref="ModelFormatException">Names both sizes.</exception>
    public static void CheckTokenizer(string path, ITextTokenizer tokenizer, ModelConfig config)
    {
        int rows = config.VocabSize;
        if (tokenizer.VocabSize > rows)
            throw new ModelFormatException(path, $"the tokenizer knows {tokenizer.VocabSize} token ids but the token embedding has {rows} rows, so ids {rows}..{tokenizer.VocabSize - 1} have no embedding: the tokenizer and the weights do not belong together; use the tokenizer of these weights");
        foreach (var (name, id) in new[] { ("BOS", tokenizer.BosId), ("EOS", tokenizer.EosId) })
        {
            if (id is { } v && (v < 0 || v >= rows))
                throw new ModelFormatException(path, $"the tokenizer's {name} id {v} is outside the token embedding's {rows} rows (ids 0..{rows - 1}): the tokenizer and the weights do not belong together");
        }
    }

    /// <summary>The same arrays under another config (e.g. another RoPE base).</summary>
    public static ModelWeights WithConfig(ModelWeights w, ModelConfig config) => w.WithConfig(config);

    private static ModelFormat FormatOf(string path)
    {
        if (File.Exists(path)) return ModelFormat.Gguf; // GgufFile.Open names a file that is not GGUF
        if (Directory.Exists(path))
        {
            if (HuggingFaceModel.IsCheckpointFolder(path)) return ModelFormat.HuggingFace;
            throw new ModelFormatException(path, $"the folder is not a Hugging Face checkpoint: expected {HfConfig.FileName} and model.safetensors or pytorch_model.bin (or their sharded index)");
        }
        throw new ModelFormatException(path, "no such file or folder; --model takes a .gguf file or a Hugging Face checkpoint folder");
    }

    private static (ITextTokenizer?, string?) TryTokenizer(Func<ITextTokenizer?> make, string absent)
    {
        try
        {
            var t = make();
            return t is null ? (null, absent) : (t, null);
        }
        catch (ModelFormatException e)
        {
            return (null, e.Problem);
        }
    }
}
