namespace LongDep.Models.Cpu;

/// <summary>
/// Post-RoPE keys and values of positions 0..Length−1 for every layer, row-major [Length, KvDim] float32.
/// A run on top of a cache places its tokens at positions Length, Length + 1, ... (ProLong's chunk pairs reuse
/// chunk j's cache as the prefix of every pair (·, j), SPEC §3).
/// </summary>
public sealed class KvCache
{
    private readonly float[][] _keys;
    private readonly float[][] _values;

    /// <summary>Wraps per-layer arrays; each must hold at least <paramref name="length"/> × <paramref name="kvDim"/> floats.</summary>
    public KvCache(int length, int kvDim, float[][] keys, float[][] values)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfLessThan(kvDim, 1);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        if (keys.Length != values.Length)
            throw new ArgumentException($"KV cache has {keys.Length} key layers but {values.Length} value layers; they must match", nameof(values));
        long need = (long)length * kvDim;
        for (int l = 0; l < keys.Length; l++)
        {
            if (keys[l] is null || keys[l].LongLength < need)
                throw new ArgumentException($"KV cache layer {l} keys hold {keys[l]?.LongLength ?? 0} floats, expected at least {need} ({length} positions × {kvDim})", nameof(keys));
            if (values[l] is null || values[l].LongLength < need)
                throw new ArgumentException($"KV cache layer {l} values hold {values[l]?.LongLength ?? 0} floats, expected at least {need} ({length} positions × {kvDim})", nameof(values));
        }
        Length = length;
        KvDim = kvDim;
        _keys = keys;
        _values = values;
    }

    /// <summary>Number of cached positions.</summary>
    public int Length { get; }

    /// <summary>Width of one cached row: KV heads × head dimension.</summary>
    public int KvDim { get; }

    /// <summary>Number of layers cached.</summary>
    public int Layers => _keys.Length;

    /// <summary>Bytes held by the cached rows.</summary>
    public long ByteSize => 2L * Layers * Length * KvDim * sizeof(float);

    /// <summary>A copy of positions [<paramref name="start"/>, start + length) as a cache of its own (at positions 0..length−1).</summary>
    public KvCache Rows(int start, int length)
    {
        if (start < 0 || length < 0 || start + length > Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"positions [{start}, {start + length}) lie outside the cache's {Length}");
        var keys = new float[Layers][];
        var values = new float[Layers][];
        for (int l = 0; l < Layers; l++)
        {
            keys[l] = _keys[l].AsSpan(start * KvDim, length * KvDim).ToArray();
            values[l] = _values[l].AsSpan(start * KvDim, length * KvDim).ToArray();
        }
        return new KvCache(length, KvDim, keys, values);
    }

    /// <summary>Post-RoPE keys of one layer, [Length, KvDim].</summary>
    public ReadOnlySpan<float> Keys(int layer) => _keys[layer].AsSpan(0, Length * KvDim);

    /// <summary>Values of one layer, [Length, KvDim].</summary>
    public ReadOnlySpan<float> Values(int layer) => _values[layer].AsSpan(0, Length * KvDim);
}
