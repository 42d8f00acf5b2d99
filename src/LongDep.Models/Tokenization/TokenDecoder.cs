using System.Buffers;
using System.Text;

namespace LongDep.Models.Tokenization;

/// <summary>
/// Turns ids back into text the same way for every route: control tokens give nothing, unknown gives U+FFFD,
/// byte tokens and byte-level characters give raw bytes (joined, then read as UTF-8), user-defined tokens give
/// their text, SentencePiece pieces give their text with '▁' read as a space.
/// </summary>
internal sealed class TokenDecoder
{
    private const char SpaceMark = '\u2581';
    private readonly string[] _pieces;
    private readonly TokenKind[] _kinds;
    private readonly bool _byteLevel;
    private readonly bool _stripDummyPrefix;

    /// <param name="pieces">Token text by id.</param>
    /// <param name="kinds">Token kind by id.</param>
    /// <param name="byteLevel">Normal tokens are written in the GPT-2 byte alphabet (else SentencePiece text with '▁').</param>
    /// <param name="stripDummyPrefix">Drop the '▁' that starts the first piece (the one the encoder prepended).</param>
    public TokenDecoder(string[] pieces, TokenKind[] kinds, bool byteLevel, bool stripDummyPrefix)
    {
        _pieces = pieces;
        _kinds = kinds;
        _byteLevel = byteLevel;
        _stripDummyPrefix = stripDummyPrefix;
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new ArrayBufferWriter<byte>(Math.Max(16, ids.Length * 4));
        bool first = true;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_pieces.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the vocabulary 0..{_pieces.Length - 1}");
            string piece = _pieces[id];
            switch (_kinds[id])
            {
                case TokenKind.Control:
                    continue;
                case TokenKind.Unknown:
                    Append(bytes, "\uFFFD");
                    break;
                case TokenKind.Byte when TokenKinds.TryParseBytePiece(piece, out byte b):
                    bytes.GetSpan(1)[0] = b;
                    bytes.Advance(1);
                    break;
                case TokenKind.UserDefined:
                    Append(bytes, piece);
                    break;
                default:
                    if (_byteLevel) AppendByteLevel(bytes, piece);
                    else
                    {
                        ReadOnlySpan<char> text = piece;
                        if (first && _stripDummyPrefix && text.Length > 0 && text[0] == SpaceMark) text = text[1..];
                        AppendSpaced(bytes, text);
                    }
                    break;
            }
            first = false;
        }
        return Encoding.UTF8.GetString(bytes.WrittenSpan);
    }

    private static void Append(ArrayBufferWriter<byte> bytes, ReadOnlySpan<char> text)
    {
        int n = Encoding.UTF8.GetBytes(text, bytes.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length)));
        bytes.Advance(n);
    }

    private static void AppendSpaced(ArrayBufferWriter<byte> bytes, ReadOnlySpan<char> text)
    {
        int start = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i < text.Length && text[i] != SpaceMark) continue;
            Append(bytes, text[start..i]);
            if (i < text.Length)
            {
                bytes.GetSpan(1)[0] = (byte)' ';
                bytes.Advance(1);
            }
            start = i + 1;
        }
    }

    private static void AppendByteLevel(ArrayBufferWriter<byte> bytes, string piece)
    {
        foreach (char c in piece)
        {
            int b = ByteLevelAlphabet.ByteOf(c);
            if (b >= 0)
            {
                bytes.GetSpan(1)[0] = (byte)b;
                bytes.Advance(1);
            }
            else Append(bytes, [c]); // not a byte-alphabet character: keep it as text
        }
    }
}
