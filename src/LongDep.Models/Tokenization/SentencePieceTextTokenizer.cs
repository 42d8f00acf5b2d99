namespace LongDep.Models.Tokenization;

/// <summary>The facts a SentencePiece BPE tokenizer is built from (GGUF "llama" arrays or a tokenizer.model).</summary>
internal sealed record SentencePieceVocab
{
    public required string Source { get; init; }
    public required string Kind { get; init; }
    public required string[] Pieces { get; init; }
    public required float[] Scores { get; init; }
    public required TokenKind[] Kinds { get; init; }
    /// <summary>Characters missing from the vocabulary become their UTF-8 bytes as &lt;0xNN&gt; pieces (all 256 must exist).</summary>
    public required bool ByteFallback { get; init; }
    public required bool AddDummyPrefix { get; init; }
    public bool RemoveExtraWhitespaces { get; init; }
    public int? UnkId { get; init; }
    public int? BosId { get; init; }
    public int? EosId { get; init; }
}

/// <summary>
/// SentencePiece BPE as google/sentencepiece (and llama.cpp) encode it: spaces become '▁' (plus a leading
/// dummy '▁' when asked), the text starts as single characters (user-defined pieces whole), and the adjacent
/// pair whose concatenation is the highest-scoring piece merges first, the leftmost pair on a tie. Unused pieces
/// are split back into the pieces that made them; characters outside the vocabulary become byte pieces (or unknown).
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers 2.0.1: its SentencePiece BPE breaks score ties
/// by taking the rightmost pair, so "▁lllll" gives [▁][l][ll][ll] where SentencePiece gives [▁][ll][ll][l].
/// </remarks>
internal sealed class SentencePieceTextTokenizer : ITextTokenizer
{
    private const char Mark = '\u2581';
    private readonly SentencePieceVocab _v;
    /// <summary>Pieces BPE may produce (normal, user-defined, unused), as SentencePiece's own piece table.</summary>
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeable;
    private readonly Dictionary<char, string[]> _userDefined; // by first character, longest first
    private readonly int[] _byteIds = new int[256];
    private readonly TokenDecoder _decoder;

    private SentencePieceTextTokenizer(SentencePieceVocab v)
    {
        _v = v;
        var mergeable = new Dictionary<string, int>(v.Pieces.Length, StringComparer.Ordinal);
        for (int i = 0; i < v.Pieces.Length; i++)
        {
            if (v.Kinds[i] is TokenKind.Normal or TokenKind.UserDefined or TokenKind.Unused && v.Pieces[i].Length > 0)
                mergeable.TryAdd(v.Pieces[i], i); // a repeated piece keeps its first id
        }
        _mergeable = mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefined = Enumerable.Range(0, v.Pieces.Length)
            .Where(i => v.Kinds[i] == TokenKind.UserDefined && v.Pieces[i].Length > 0)
            .Select(i => v.Pieces[i]).Distinct()
            .GroupBy(p => p[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Length).ToArray());
        Array.Fill(_byteIds, -1);
        for (int i = 0; i < v.Pieces.Length; i++)
        {
            if (v.Kinds[i] == TokenKind.Byte && TokenKinds.TryParseBytePiece(v.Pieces[i], out byte b) && _byteIds[b] < 0) _byteIds[b] = i;
        }
        _decoder = new TokenDecoder(v.Pieces, v.Kinds, byteLevel: false, stripDummyPrefix: v.AddDummyPrefix);
    }

    public int VocabSize => _v.Pieces.Length;
    public int? BosId => _v.BosId;
    public int? EosId => _v.EosId;
    public string Kind => _v.Kind;

    /// <summary>Checks the vocabulary; throws <see cref="ModelFormatException"/> naming what is wrong.</summary>
    public static SentencePieceTextTokenizer Create(SentencePieceVocab v)
    {
        int n = v.Pieces.Length;
        if (n == 0) throw new ModelFormatException(v.Source, "the SentencePiece vocabulary has no pieces");
        if (v.Scores.Length != n || v.Kinds.Length != n)
            throw new ModelFormatException(v.Source, $"{n} pieces but {v.Scores.Length} scores and {v.Kinds.Length} types");
        foreach (var (name, id) in new[] { ("BOS", v.BosId), ("EOS", v.EosId), ("unknown-token", v.UnkId) })
        {
            if (id is { } i && (i < 0 || i >= n))
                throw new ModelFormatException(v.Source, $"{name} id {i} is outside the vocabulary 0..{n - 1}");
        }
        var tokenizer = new SentencePieceTextTokenizer(v);
        if (v.ByteFallback)
        {
            int missing = Array.IndexOf(tokenizer._byteIds, -1);
            if (missing >= 0)
                throw new ModelFormatException(v.Source, $"byte fallback is on but the byte piece {TokenKinds.BytePiece(missing)} is missing");
        }
        return tokenizer;
    }

    public string Decode(ReadOnlySpan<int> ids) => _decoder.Decode(ids);

    public int[] Encode(string text, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos) ids.Add(BosId ?? throw new InvalidOperationException($"{Kind}: this vocabulary has no BOS token; encode without --add-bos"));
        string normalized = Normalize(text);
        if (normalized.Length > 0) EncodeNormalized(normalized, ids);
        return ids.ToArray();
    }

    /// <summary>Spaces to '▁', the dummy prefix, and (when the model says so) no leading, trailing or repeated spaces.</summary>
    private string Normalize(string text)
    {
        ReadOnlySpan<char> s = text;
        if (_v.RemoveExtraWhitespaces) s = s.Trim(' ');
        if (s.IsEmpty) return "";
        var sb = new System.Text.StringBuilder(s.Length + 1);
        if (_v.AddDummyPrefix) sb.Append(Mark);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != ' ') sb.Append(s[i]);
            else if (!_v.RemoveExtraWhitespaces || s[i - 1] != ' ') sb.Append(Mark);
        }
        return sb.ToString();
    }

    private struct Symbol
    {
        public int Start, Length, Prev, Next;
    }

    private readonly record struct Candidate(int Left, int Right, int Length, float Score);

    /// <summary>Highest score first; on equal scores the leftmost pair.</summary>
    private sealed class CandidateOrder : IComparer<Candidate>
    {
        public static readonly CandidateOrder Instance = new();
        public int Compare(Candidate a, Candidate b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left);
    }

    private void EncodeNormalized(string text, List<int> ids)
    {
        // Initial symbols: user-defined pieces whole, otherwise one code point each.
        var symbols = new List<Symbol>(text.Length);
        for (int pos = 0; pos < text.Length;)
        {
            int len = UserDefinedAt(text, pos);
            if (len == 0) len = char.IsHighSurrogate(text[pos]) && pos + 1 < text.Length && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
            symbols.Add(new Symbol { Start = pos, Length = len, Prev = symbols.Count - 1, Next = pos + len < text.Length ? symbols.Count + 1 : -1 });
            pos += len;
        }
        var sym = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(symbols);

        var agenda = new PriorityQueue<Candidate, Candidate>(CandidateOrder.Instance);
        Dictionary<string, (string Left, string Right)>? unusedParts = null;
        void TryPair(Span<Symbol> s, int left, int right)
        {
            if (left < 0 || right < 0) return;
            int length = s[left].Length + s[right].Length;
            if (!_mergeable.TryGetValue(text.AsSpan(s[left].Start, length), out int id)) return;
            agenda.Enqueue(new Candidate(left, right, length, _v.Scores[id]), new Candidate(left, right, length, _v.Scores[id]));
            if (_v.Kinds[id] == TokenKind.Unused)
            {
                unusedParts ??= new Dictionary<string, (string, string)>(StringComparer.Ordinal);
                unusedParts.TryAdd(text.Substring(s[left].Start, length),
                    (text.Substring(s[left].Start, s[left].Length), text.Substring(s[right].Start, s[right].Length)));
            }
        }

        for (int i = 1; i < sym.Length; i++) TryPair(sym, i - 1, i);
        while (agenda.TryDequeue(out Candidate c, out _))
        {
            ref Symbol left = ref sym[c.Left];
            ref Symbol right = ref sym[c.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != c.Length) continue; // stale
            left.Length += right.Length;
            left.Next = right.Next;
            if (right.Next >= 0) sym[right.Next].Prev = c.Left;
            right.Length = 0;
            TryPair(sym, left.Prev, c.Left);
            TryPair(sym, c.Left, left.Next);
        }

        bool lastWasUnknown = false;
        for (int i = 0; i >= 0 && sym.Length > 0; i = sym[i].Next)
            Emit(text.AsSpan(sym[i].Start, sym[i].Length), unusedParts, ids, ref lastWasUnknown);
    }

    /// <summary>
    /// Writes the id of a final symbol. An unused piece is split back into the two pieces that formed it,
    /// recursively (SentencePiece's resegmentation); a symbol outside the vocabulary becomes byte pieces, or the
    /// unknown token (one for a run of them, as SentencePiece does).
    /// </summary>
    private void Emit(ReadOnlySpan<char> piece, Dictionary<string, (string Left, string Right)>? unusedParts, List<int> ids, ref bool lastWasUnknown)
    {
        if (_mergeable.TryGetValue(piece, out int id))
        {
            if (_v.Kinds[id] == TokenKind.Unused && unusedParts is not null && unusedParts.TryGetValue(piece.ToString(), out var parts))
            {
                Emit(parts.Left, unusedParts, ids, ref lastWasUnknown);
                Emit(parts.Right, unusedParts, ids, ref lastWasUnknown);
                return;
            }
            ids.Add(id);
            lastWasUnknown = false;
        }
        else if (_v.ByteFallback)
        {
            Span<byte> utf8 = piece.Length <= 4 ? stackalloc byte[16] : new byte[System.Text.Encoding.UTF8.GetMaxByteCount(piece.Length)];
            int n = System.Text.Encoding.UTF8.GetBytes(piece, utf8);
            for (int k = 0; k < n; k++) ids.Add(_byteIds[utf8[k]]);
            lastWasUnknown = false;
        }
        else
        {
            int unk = _v.UnkId ?? throw new InvalidOperationException(
                $"{Kind}: '{piece}' is not in the vocabulary, which has neither byte fallback nor an unknown token");
            if (!lastWasUnknown) ids.Add(unk);
            lastWasUnknown = true;
        }
    }

    private int UserDefinedAt(string text, int pos)
    {
        if (!_userDefined.TryGetValue(text[pos], out string[]? candidates)) return 0;
        foreach (string u in candidates)
        {
            if (pos + u.Length <= text.Length && string.CompareOrdinal(text, pos, u, 0, u.Length) == 0) return u.Length;
        }
        return 0;
    }
}
