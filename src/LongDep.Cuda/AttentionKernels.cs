namespace LongDep.Cuda;

/// <summary>Which kernels run the attention forward and the LADM PFS passes (the O(T²) work).</summary>
public enum AttentionKernels
{
    /// <summary>
    /// Tensor cores (attention_mma.cu, pfs_mma.cu: mma.sync with f16 inputs and f32 accumulation) where the head
    /// dimension is 64 or 128, the scalar kernels otherwise. The default.
    /// </summary>
    TensorCores,
    /// <summary>The scalar float32 kernels (attention.cu, pfs.cu) everywhere: slower, inputs not rounded to f16.</summary>
    Simple,
}

/// <summary>Parsing and naming of <see cref="AttentionKernels"/> for the command line and the environment.</summary>
public static class AttentionKernelNames
{
    /// <summary>Environment variable that sets the default (<c>tensor</c> or <c>simple</c>) when no option is given.</summary>
    public const string EnvironmentVariable = "LONGDEP_KERNEL_SET";

    public static string Name(this AttentionKernels kernels) => kernels == AttentionKernels.Simple ? "simple" : "tensor";

    /// <summary>
    /// "tensor kernels", "simple kernels", "tensor kernels (16-row)" when the environment turns the wide kernels off, or
    /// "tensor kernels (8-warp wide)" when it asks for 8 warps per block of the wide kernels.
    /// </summary>
    public static string Describe(this AttentionKernels kernels) =>
        kernels != AttentionKernels.TensorCores ? $"{kernels.Name()} kernels"
        : !WideFromEnvironment() ? "tensor kernels (16-row)"
        : WarpsFromEnvironment() == 8 ? "tensor kernels (8-warp wide)"
        : "tensor kernels";

    /// <summary>Parses <c>tensor</c> or <c>simple</c> (case-insensitive); anything else is an error naming both.</summary>
    public static AttentionKernels Parse(string text, string source) => text.Trim().ToLowerInvariant() switch
    {
        "tensor" => AttentionKernels.TensorCores,
        "simple" => AttentionKernels.Simple,
        _ => throw new ArgumentException($"{source}: '{text}' is not a kernel set (use tensor or simple)"),
    };

    /// <summary>
    /// Environment variable that turns the wide tensor-core kernels (head dimension 64, 32 rows per warp: packed-f16
    /// attention, PFS passes 1 and 2) off with <c>0</c>, leaving the 16-row kernels they replace; <c>1</c> or unset keeps them
    /// on. Both give the same outputs: the switch is there to time one against the other and to isolate a fault.
    /// </summary>
    public const string WideEnvironmentVariable = "LONGDEP_WIDE_ATTENTION";

    /// <summary>Whether the wide kernels are on (<see cref="WideEnvironmentVariable"/>).</summary>
    public static bool WideFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(WideEnvironmentVariable)?.Trim();
        return value switch
        {
            null or "" or "1" => true,
            "0" => false,
            _ => throw new ArgumentException($"{WideEnvironmentVariable}: '{value}' is not 0 or 1"),
        };
    }

    /// <summary>
    /// Environment variable that sets the warps per block of the wide kernels that stage tiles of the packed f16 keys:
    /// <c>4</c> (the default when unset: attention in 128-row blocks, PFS pass 1 one head a block) or <c>8</c> (attention in
    /// 256-row blocks, PFS pass 1 two heads of a GQA group a block): each staged key tile then serves twice the rows. Both
    /// give the same outputs; which is faster is for the GPU to say (<c>longdep bench --kernel-timing</c> times both).
    /// </summary>
    public const string WarpsEnvironmentVariable = "LONGDEP_WIDE_WARPS";

    /// <summary>The wide kernels' warps per block from <see cref="WarpsEnvironmentVariable"/>: 4 or 8.</summary>
    public static int WarpsFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(WarpsEnvironmentVariable)?.Trim();
        return value switch
        {
            null or "" or "4" => 4,
            "8" => 8,
            _ => throw new ArgumentException($"{WarpsEnvironmentVariable}: '{value}' is not 4 or 8"),
        };
    }

    /// <summary>The default: <see cref="EnvironmentVariable"/> when set, else tensor cores.</summary>
    public static AttentionKernels FromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(value) ? AttentionKernels.TensorCores : Parse(value, EnvironmentVariable);
    }
}

/// <summary>
/// How one layer's attention scores are formed beyond q·k, for the attention and PFS kernels: the score scale, the sliding
/// window (query t sees key s only when t − s &lt; <see cref="Window"/>; 0: every earlier key) and the soft-cap
/// (z → cap · tanh(z / cap) after scaling; 0: none). Soft-capped scores run on the scalar kernels only.
/// </summary>
internal readonly record struct ScoreOptions(float Scale, int Window = 0, float SoftCap = 0f)
{
    /// <summary>Plain causal attention with the scale 1/sqrt(headDim).</summary>
    public static ScoreOptions Plain(int headDim) => new(KernelOps.Scale(headDim));

    public override string ToString() =>
        $"scale {Scale:G6}{(Window > 0 ? $", window {Window}" : "")}{(SoftCap > 0 ? $", soft-cap {SoftCap:G6}" : "")}";
}
