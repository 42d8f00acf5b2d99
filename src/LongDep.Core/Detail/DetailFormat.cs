namespace LongDep.Core.Detail;

/// <summary>
/// The <c>--detail</c> side file: the measurements behind each scored record, one entry per written record.
/// All integers and floats are little-endian.
/// <code>
/// file    = header frame*
/// header  = "LDDT" (4 bytes) | version u16 (= 2) | reserved u16 (= 0) | n u32 | settings (n bytes: the
///           score file's settings header line, UTF-8; empty when unknown) | crc u32 (CRC-32 of the settings)
///           (version 1, still read: the first 8 bytes only, no settings)
/// frame   = length u32 (L, the body's byte count) | body (L bytes) | crc u32 (CRC-32/IEEE of the body)
/// body    = index i64 | method u8 (1 ladm, 2 prolong) | status u8 (0 ok, 1 too_short, 2 bad_record,
///           3 numeric_error) | reserved u16 | score f64 (NaN when not ok) | raw u32 (payload size before
///           compression, 0 = no payload) | zstd frame of the payload (L − 24 bytes; empty when raw = 0)
/// </code>
/// Payload, ProLong: n i32 (chunks) | N i32 (W / l) | δ f64 | single_ppl f32[n] | m i32 (drawn pairs) |
/// m × (i i32 | j i32 | pair_ppl f32 | dlt f32), pairs sorted by i then j.
/// <para>
/// Payload, LADM: T i32 | chunk i32 | interval i32 | stride i32 | S i32 (spans, in schedule order) |
/// S × (start i32 | end i32 | k i32 | intervals i32[k]) | layers i32 | PFS f32 [layer][span][k] |
/// c i32 (0 or layers) | CDS(layer) f64[c].
/// </para>
/// A resumed run appends after the last complete frame; a reader takes the last entry of an index.
/// </summary>
public static class DetailFormat
{
    /// <summary>The four bytes a detail file starts with.</summary>
    public static ReadOnlySpan<byte> Magic => "LDDT"u8;

    /// <summary>The format version this code writes and reads.</summary>
    public const ushort Version = 2;

    /// <summary>Bytes of the fixed start of the file header (magic, version, reserved).</summary>
    public const int HeaderBytes = 8;

    /// <summary>Largest settings block accepted in a header.</summary>
    public const int MaxSettingsBytes = 1 << 20;

    /// <summary>Bytes of the fixed part of a frame body (index … raw).</summary>
    public const int BodyFixedBytes = 24;

    /// <summary>Bytes a frame adds around its body: the length before it and the CRC after it.</summary>
    public const int FrameOverheadBytes = 8;

    /// <summary>Largest frame body accepted (256 MiB); larger lengths are treated as corruption.</summary>
    public const int MaxBodyBytes = 256 << 20;

    /// <summary>Largest uncompressed payload accepted (512 MiB).</summary>
    public const int MaxPayloadBytes = 512 << 20;

    /// <summary>Method byte of an LADM entry.</summary>
    public const byte MethodLadm = 1;

    /// <summary>Method byte of a ProLong entry.</summary>
    public const byte MethodProLong = 2;

    /// <summary>The method byte of a method name ("ladm", "prolong").</summary>
    public static byte MethodCode(string method) => method switch
    {
        "ladm" => MethodLadm,
        "prolong" => MethodProLong,
        _ => throw new ArgumentException($"unknown method '{method}': expected ladm or prolong", nameof(method)),
    };

    /// <summary>The method name of a method byte, or null for an unknown byte.</summary>
    public static string? MethodName(byte code) => code switch
    {
        MethodLadm => "ladm",
        MethodProLong => "prolong",
        _ => null,
    };
}

/// <summary>CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the check of each detail frame.</summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>CRC-32 of <paramref name="bytes"/> ("123456789" gives 0xCBF43926).</summary>
    public static uint Compute(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in bytes) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
