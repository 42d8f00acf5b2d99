namespace LongDep.Core.Records;

/// <summary>64-bit FNV-1a: a stable hash of a record's raw bytes (same value on every run, machine and process).</summary>
public static class Fnv1a64
{
    /// <summary>FNV-1a 64-bit offset basis: the hash of no bytes.</summary>
    public const ulong OffsetBasis = 0xCBF29CE484222325UL;
    private const ulong Prime = 0x100000001B3UL;

    /// <summary>Hash of <paramref name="bytes"/>.</summary>
    public static ulong Hash(ReadOnlySpan<byte> bytes) => Append(OffsetBasis, bytes);

    /// <summary>Continues <paramref name="hash"/> over more bytes (Hash(a ++ b) == Append(Hash(a), b)).</summary>
    public static ulong Append(ulong hash, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            hash ^= b;
            hash *= Prime;
        }
        return hash;
    }
}
