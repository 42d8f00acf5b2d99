namespace LongDep.Models;

/// <summary>
/// Element types a model file may hold (SPEC §6 lists the ones we read): the float types, and GGML's block-quantized
/// types that the common llama-quantize presets produce. <see cref="Other"/> is any type we list but cannot read.
/// </summary>
public enum TensorType { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL, IQ4_XS, Other }

/// <summary>A tensor as a file describes it. <see cref="Shape"/> is row-major, outermost first ([out, in] for a matrix).</summary>
public sealed record TensorInfo(string Name, TensorType Type, string TypeName, long[] Shape, long ByteSize)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>Named tensors from a GGUF file or a safetensors or PyTorch (.bin) checkpoint, read as float32 or in their stored type.</summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file or folder the tensors come from, for error messages.</summary>
    string SourcePath { get; }
    IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    /// <summary>Reads and dequantizes one tensor to float32, row-major. Throws <see cref="ModelFormatException"/> on bad data.</summary>
    float[] ReadF32(string name);

    /// <summary>
    /// One tensor in its stored type, without converting it: a memory-mapped view where the source can give one, else
    /// its float32 values. Throws <see cref="ModelFormatException"/> on a type that cannot be read.
    /// </summary>
    WeightMatrix ReadMatrix(string name) => WeightMatrix.FromFloat32(ReadF32(name));
}
