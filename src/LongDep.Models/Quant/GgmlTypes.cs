namespace LongDep.Models.Quant;

/// <summary>
/// One GGML tensor element type as a GGUF file names it: its numeric id, its name, and its block geometry
/// (<see cref="BlockElements"/> values stored in <see cref="BlockBytes"/> bytes).
/// </summary>
public readonly record struct GgmlTypeInfo(uint Id, string Name, int BlockElements, int BlockBytes, TensorType Type);

/// <summary>
/// The GGML type table (ids from ggml.h, block sizes from ggml-common.h). Every type a current GGUF file may hold
/// is listed so that its byte size, and hence the file layout, can be checked even when we cannot dequantize it.
/// </summary>
public static class GgmlTypes
{
    private static readonly Dictionary<uint, GgmlTypeInfo> ById = Build();

    /// <summary>The types this tool dequantizes, in the order error messages list them.</summary>
    public static IReadOnlyList<TensorType> Readable { get; } =
    [
        TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0,
        TensorType.Q5_1, TensorType.Q2_K, TensorType.Q3_K, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K,
        TensorType.IQ4_NL, TensorType.IQ4_XS,
    ];

    /// <summary>"F32, F16, BF16, Q8_0, Q4_0, Q4_1, ...", for messages.</summary>
    public static string ReadableList => string.Join(", ", Readable);

    private static Dictionary<uint, GgmlTypeInfo> Build()
    {
        const int K = 256; // super-block size of the k-quants and i-quants
        var list = new GgmlTypeInfo[]
        {
            new(0, "F32", 1, 4, TensorType.F32),
            new(1, "F16", 1, 2, TensorType.F16),
            new(2, "Q4_0", 32, 2 + 16, TensorType.Q4_0),
            new(3, "Q4_1", 32, 2 + 2 + 16, TensorType.Q4_1),
            new(6, "Q5_0", 32, 2 + 4 + 16, TensorType.Q5_0),
            new(7, "Q5_1", 32, 2 + 2 + 4 + 16, TensorType.Q5_1),
            new(8, "Q8_0", 32, 2 + 32, TensorType.Q8_0),
            new(9, "Q8_1", 32, 2 + 2 + 32, TensorType.Other),
            new(10, "Q2_K", K, 2 + 2 + K / 16 + K / 4, TensorType.Q2_K),
            new(11, "Q3_K", K, 2 + K / 4 + K / 8 + 12, TensorType.Q3_K),
            new(12, "Q4_K", K, 2 + 2 + 12 + K / 2, TensorType.Q4_K),
            new(13, "Q5_K", K, 2 + 2 + 12 + K / 2 + K / 8, TensorType.Q5_K),
            new(14, "Q6_K", K, 2 + K / 16 + 3 * K / 4, TensorType.Q6_K),
            new(15, "Q8_K", K, 4 + K + K / 16 * 2, TensorType.Other),
            new(16, "IQ2_XXS", K, 2 + K / 8 * 2, TensorType.Other),
            new(17, "IQ2_XS", K, 2 + K / 8 * 2 + K / 32, TensorType.Other),
            new(18, "IQ3_XXS", K, 2 + 3 * (K / 8), TensorType.Other),
            new(19, "IQ1_S", K, 2 + K / 8 + K / 16, TensorType.Other),
            new(20, "IQ4_NL", 32, 2 + 16, TensorType.IQ4_NL),
            new(21, "IQ3_S", K, 2 + 13 * (K / 32) + K / 64, TensorType.Other),
            new(22, "IQ2_S", K, 2 + K / 4 + K / 16, TensorType.Other),
            new(23, "IQ4_XS", K, 2 + 2 + K / 64 + K / 2, TensorType.IQ4_XS),
            new(24, "I8", 1, 1, TensorType.Other),
            new(25, "I16", 1, 2, TensorType.Other),
            new(26, "I32", 1, 4, TensorType.Other),
            new(27, "I64", 1, 8, TensorType.Other),
            new(28, "F64", 1, 8, TensorType.Other),
            new(29, "IQ1_M", K, K / 8 + K / 16 + K / 32, TensorType.Other),
            new(30, "BF16", 1, 2, TensorType.BF16),
            new(34, "TQ1_0", K, 2 + K / 64 + (K - 4 * K / 64) / 5, TensorType.Other),
            new(35, "TQ2_0", K, 2 + K / 4, TensorType.Other),
            new(39, "MXFP4", 32, 1 + 16, TensorType.Other),
            new(40, "NVFP4", 64, 4 + 32, TensorType.Other),
            new(41, "Q1_0", 128, 2 + 128 / 8, TensorType.Other),
            new(42, "Q2_0", 64, 2 + 64 / 4, TensorType.Other),
        };
        return list.ToDictionary(t => t.Id);
    }

    /// <summary>Looks up a GGML type id; false for ids that no current GGML defines (4, 5, 31..33, 36..38, 43+).</summary>
    public static bool TryGet(uint id, out GgmlTypeInfo info) => ById.TryGetValue(id, out info);

    /// <summary>The GGML type of one of our readable <see cref="TensorType"/>s.</summary>
    /// <exception cref="ArgumentException"><paramref name="type"/> is <see cref="TensorType.Other"/>.</exception>
    public static GgmlTypeInfo Of(TensorType type) => type switch
    {
        TensorType.F32 => ById[0],
        TensorType.F16 => ById[1],
        TensorType.Q4_0 => ById[2],
        TensorType.Q4_1 => ById[3],
        TensorType.Q5_0 => ById[6],
        TensorType.Q5_1 => ById[7],
        TensorType.Q8_0 => ById[8],
        TensorType.Q2_K => ById[10],
        TensorType.Q3_K => ById[11],
        TensorType.Q4_K => ById[12],
        TensorType.Q5_K => ById[13],
        TensorType.Q6_K => ById[14],
        TensorType.IQ4_NL => ById[20],
        TensorType.IQ4_XS => ById[23],
        TensorType.BF16 => ById[30],
        _ => throw new ArgumentException($"tensor type {type} has no single GGML type; name the GGML type id instead", nameof(type)),
    };
}
