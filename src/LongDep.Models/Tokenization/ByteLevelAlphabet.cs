namespace LongDep.Models.Tokenization;

/// <summary>
/// GPT-2's byte-to-character table used by byte-level BPE: printable Latin-1 bytes stand for themselves, the
/// other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) take U+0100.. in byte order, so that space is 'Ġ' and '\n' is 'Ċ'.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>Character for each byte value.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Byte for each character up to U+0143, -1 where the character is not in the alphabet.</summary>
    private static readonly short[] CharToByte = BuildCharToByte();

    private static bool StandsForItself(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = StandsForItself(b) ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var map = new short[256 + 68];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++) map[ByteToChar[b]] = (short)b;
        return map;
    }

    /// <summary>The byte a character of a byte-level token stands for, or -1.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;

    /// <summary>Writes the byte-level form of <paramref name="text"/> (its UTF-8 bytes, each as its character) into a rented buffer.</summary>
    /// <returns>The number of characters written; return <paramref name="buffer"/> to <see cref="System.Buffers.ArrayPool{T}.Shared"/>.</returns>
    public static int Encode(ReadOnlySpan<char> text, out char[] buffer)
    {
        var pool = System.Buffers.ArrayPool<byte>.Shared;
        byte[] bytes = pool.Rent(System.Text.Encoding.UTF8.GetMaxByteCount(text.Length));
        int n = System.Text.Encoding.UTF8.GetBytes(text, bytes);
        buffer = System.Buffers.ArrayPool<char>.Shared.Rent(Math.Max(n, 1));
        for (int i = 0; i < n; i++) buffer[i] = ByteToChar[bytes[i]];
        pool.Return(bytes);
        return n;
    }
}
