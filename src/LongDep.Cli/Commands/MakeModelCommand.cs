using System.CommandLine;
using LongDep.Cli.Runtime;
using LongDep.Models;
using LongDep.Models.Gguf;
using LongDep.Models.HuggingFace;
using LongDep.Models.Quant;
using LongDep.Models.Synthetic;
using LongDep.Models.Tokenization;

namespace LongDep.Cli.Commands;

/// <summary>
/// <c>longdep make-model</c>: random weights of a named shape as a GGUF file or a Hugging Face folder. The same
/// shape and seed give the same weights in both formats (Q/K rows permuted for each file's RoPE convention), so a
/// PyTorch baseline and the engine read identical models.
/// </summary>
public static class MakeModelCommand
{
    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = $"model shape: {string.Join(", ", RandomModel.ShapeNames)}", DefaultValueFactory = _ => "tinyllama" };
        var format = new Option<string>("--format")
        {
            Description = "gguf, hf (config.json + model.safetensors) or hf-bin (config.json + pytorch_model.bin, as torch.save writes it)",
            DefaultValueFactory = _ => "gguf",
        };
        format.AcceptOnlyFromAmong("gguf", "hf", "hf-bin");
        var output = new Option<string>("--output", "-o") { Description = "the .gguf file or the checkpoint folder to write", Required = true };
        var seed = NumericOption.Whole("--seed", "weights seed", 1234L, long.MinValue, long.MaxValue);
        var dtype = new Option<string>("--dtype")
        {
            Description = "the matrices' type: f16, bf16, f32, or (GGUF only) a block type: " + string.Join(", ", BlockTypeNames) +
                          " (norms stay f32 in GGUF; rows that are not whole blocks fall back as llama-quantize does)",
            DefaultValueFactory = _ => "f16",
        };
        dtype.AcceptOnlyFromAmong(["f16", "bf16", "f32", .. BlockTypeNames]);
        var cmd = new Command("make-model", "Write a random model of a named shape (GGUF or Hugging Face folder) with a synthetic tokenizer.")
        {
            shape, format, output, seed, dtype,
        };
        cmd.SetAction(r =>
        {
            ModelConfig cfg;
            try
            {
                cfg = RandomModel.Shape(r.GetValue(shape)!);
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message.Split(" (Parameter")[0], ExitCodes.Usage);
            }
            var type = Enum.Parse<TensorType>(r.GetValue(dtype)!, ignoreCase: true);
            if (r.GetValue(format) != "gguf" && type is not (TensorType.F16 or TensorType.BF16 or TensorType.F32))
                throw new CliException($"--dtype {r.GetValue(dtype)} is a GGUF block type; a Hugging Face folder is written as f16, bf16 or f32", ExitCodes.Usage);
            string path = r.GetValue(output)!;
            Console.Error.WriteLine($"generating {r.GetValue(shape)} ({cfg.ParameterCount:N0} parameters, seed {r.GetValue(seed)})");
            string f = r.GetValue(format)!;
            if (f == "gguf" && !Architectures.Has(cfg.Architecture, ModelFormat.Gguf))
                throw new CliException($"--shape {r.GetValue(shape)}: llama.cpp has no {cfg.Architecture} architecture, so there is no GGUF form; use --format hf or hf-bin", ExitCodes.Usage);
            // Matrices computed when written, one tensor at a time: llama2-7b's 27 GB of float32 never exist at once.
            var weights = RandomModel.Create(cfg, r.GetValue(seed), lazy: true);
            Write(path, f != "gguf", weights, type, f == "hf-bin" ? HfWeightsFormat.PyTorch : HfWeightsFormat.Safetensors);
            Console.Out.WriteLine($"wrote {path}");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>The GGUF block types <c>--dtype</c> accepts, lower-case.</summary>
    private static readonly string[] BlockTypeNames = GgmlTypes.Readable.Where(Quantize.IsBlockType).Select(t => t.ToString().ToLowerInvariant()).ToArray();

    /// <summary>Writes <paramref name="weights"/> with a synthetic vocabulary of the model's size (Hugging Face weights as <paramref name="weightsFormat"/> says).</summary>
    public static void Write(string path, bool huggingFace, ModelWeights weights, TensorType type,
        HfWeightsFormat weightsFormat = HfWeightsFormat.Safetensors)
    {
        if (huggingFace)
        {
            var vocab = Vocabulary(weights.Config);
            HuggingFaceModel.Save(path, weights, type, 0, vocab.BosId, vocab.EosId, weightsFormat);
        }
        else
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir is not null) Directory.CreateDirectory(dir);
            GgufModel.Save(path, weights, type, Vocabulary(weights.Config), "longdep random " + weights.Config.Architecture);
        }
    }

    /// <summary>The synthetic vocabulary that goes with a random model.</summary>
    public static GgufVocabulary Vocabulary(ModelConfig cfg) => SyntheticText.Vocabulary(cfg.VocabSize, SyntheticText.Words(Math.Min(2000, cfg.VocabSize / 4)));
}
