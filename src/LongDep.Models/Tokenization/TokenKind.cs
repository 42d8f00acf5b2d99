namespace LongDep.Models.Tokenization;

/// <summary>Token types; the values are those of GGUF <c>token_type</c> and of SentencePiece's proto.</summary>
internal enum TokenKind : byte
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

internal static class TokenKinds
{
    /// <summary>Maps a GGUF/SentencePiece type code; 0 (undefined) reads as normal.</summary>
    public static TokenKind FromCode(int code, string source, int id) => code switch
    {
        0 or 1 => TokenKind.Normal,
        >= 2 and <= 6 => (TokenKind)code,
        _ => throw new ModelFormatException(source,
            $"token {id} has type {code}; expected 1 (normal), 2 (unknown), 3 (control), 4 (user-defined), 5 (unused) or 6 (byte)"),
    };

    /// <summary>Parses a byte-fallback piece "&lt;0xNN&gt;" (two upper- or lower-case hex digits).</summary>
    public static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        if (piece.Length != 6 || !piece.StartsWith("<0x", StringComparison.Ordinal) || piece[5] != '>') return false;
        return byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    /// <summary>The canonical byte-fallback piece for <paramref name="b"/>: "&lt;0x41&gt;".</summary>
    public static string BytePiece(int b) => $"<0x{b:X2}>";
}
