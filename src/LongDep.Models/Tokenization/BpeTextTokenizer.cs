using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace LongDep.Models.Tokenization;

/// <summary>A text rewrite applied to each stretch of text between user-defined tokens (Hugging Face "normalizer").</summary>
internal abstract record NormalizeStep
{
    public abstract string Apply(string text);
}

/// <summary>Puts <see cref="Text"/> in front of non-empty text (legacy Llama tokenizer.json: "▁").</summary>
internal sealed record PrependStep(string Text) : NormalizeStep
{
    public override string Apply(string text) => text.Length == 0 ? text : Text + text;
}

/// <summary>Replaces every occurrence of <see cref="From"/> (legacy Llama tokenizer.json: " " by "▁").</summary>
internal sealed record ReplaceStep(string From, string To) : NormalizeStep
{
    public override string Apply(string text) => text.Replace(From, To, StringComparison.Ordinal);
}

/// <summary>One piece of pre-tokenized text; <see cref="AtStart"/> when it begins at the very start of the input.</summary>
internal readonly record struct Piece(string Text, bool AtStart);

/// <summary>A pre-tokenization step (Hugging Face "pre_tokenizer"): refines every piece into smaller pieces.</summary>
internal abstract record PreTokenizeStep
{
    public abstract void Apply(Piece piece, List<Piece> output);

    /// <summary>Splits at the matches of <paramref name="pattern"/>, keeping matches and the text between them as pieces.</summary>
    protected static void SplitIsolated(Piece piece, Regex pattern, List<Piece> output)
    {
        int pos = 0;
        foreach (ValueMatch m in pattern.EnumerateMatches(piece.Text))
        {
            if (m.Length == 0) continue;
            if (m.Index > pos) output.Add(new Piece(piece.Text[pos..m.Index], piece.AtStart && pos == 0));
            output.Add(new Piece(piece.Text.Substring(m.Index, m.Length), piece.AtStart && m.Index == 0));
            pos = m.Index + m.Length;
        }
        if (pos < piece.Text.Length) output.Add(new Piece(piece.Text[pos..], piece.AtStart && pos == 0));
    }
}

/// <summary>Hugging Face <c>Split</c> with behaviour "Isolated".</summary>
internal sealed record RegexSplitStep(Regex Pattern) : PreTokenizeStep
{
    public override void Apply(Piece piece, List<Piece> output) => SplitIsolated(piece, Pattern, output);
}

/// <summary>When the '▁' prefix goes in front of a piece that does not already start with '▁'.</summary>
internal enum MetaspacePrepend { Never, First, Always }

/// <summary>Hugging Face <c>Metaspace</c>: spaces become '▁', a '▁' prefix per <see cref="Prepend"/>, optional split before each '▁'.</summary>
internal sealed record MetaspaceStep(MetaspacePrepend Prepend, bool Split) : PreTokenizeStep
{
    public const char Mark = '\u2581';

    public override void Apply(Piece piece, List<Piece> output)
    {
        string text = piece.Text.Replace(' ', Mark);
        bool prepend = Prepend == MetaspacePrepend.Always || (Prepend == MetaspacePrepend.First && piece.AtStart);
        if (prepend && !text.StartsWith(Mark)) text = Mark + text;
        if (!Split)
        {
            output.Add(piece with { Text = text });
            return;
        }
        int start = 0;
        for (int i = 1; i <= text.Length; i++)
        {
            if (i < text.Length && text[i] != Mark) continue;
            output.Add(new Piece(text[start..i], piece.AtStart && start == 0));
            start = i;
        }
    }
}

/// <summary>Hugging Face <c>ByteLevel</c> pre-tokenizer: optional leading space, optional split by the GPT-2 regex.</summary>
internal sealed record ByteLevelStep(bool AddPrefixSpace, bool UseRegex) : PreTokenizeStep
{
    private static readonly Regex Gpt2 = new(PreTokenizerPatterns.Gpt2, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    public override void Apply(Piece piece, List<Piece> output)
    {
        if (AddPrefixSpace && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
        if (UseRegex) SplitIsolated(piece, Gpt2, output);
        else output.Add(piece);
    }
}

/// <summary>Everything a BPE tokenizer with merges needs, from GGUF "gpt2" metadata or a tokenizer.json.</summary>
internal sealed record BpeSettings
{
    public required string Source { get; init; }
    public required string Kind { get; init; }
    /// <summary>Token text by id (byte-level alphabet for byte-level models); length = vocabulary size.</summary>
    public required string[] Pieces { get; init; }
    public required TokenKind[] Kinds { get; init; }
    /// <summary>The model vocabulary the merges work on (token text to id).</summary>
    public required Dictionary<string, int> Vocab { get; init; }
    /// <summary>Merges in rank order, "left right".</summary>
    public required IReadOnlyList<string> Merges { get; init; }
    /// <summary>GPT-2 style: words are UTF-8 bytes written in <see cref="ByteLevelAlphabet"/>. Otherwise SentencePiece style ('▁').</summary>
    public required bool ByteLevel { get; init; }
    public IReadOnlyList<NormalizeStep> Normalizers { get; init; } = [];
    public IReadOnlyList<PreTokenizeStep> PreTokenizers { get; init; } = [];
    /// <summary>Characters missing from the vocabulary become &lt;0xNN&gt; tokens (SentencePiece style).</summary>
    public bool ByteFallback { get; init; }
    /// <summary>Adjacent unknown characters of one word give a single unknown token.</summary>
    public bool FuseUnknown { get; init; }
    /// <summary>A word found whole in the vocabulary is one token, whatever the merges say (Llama 3).</summary>
    public bool IgnoreMerges { get; init; }
    /// <summary>Decoding drops the '▁' that starts the first piece (the encoder prepended it).</summary>
    public bool StripDummyPrefix { get; init; }
    public int? UnkId { get; init; }
    public int? BosId { get; init; }
    public int? EosId { get; init; }
}

/// <summary>
/// BPE with ranked merges, encoded by Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> word by word; the
/// normalization, pre-tokenization, user-defined tokens and byte fallback around it are done here, in the order
/// Hugging Face tokenizers (and llama.cpp) apply them.
/// </summary>
internal sealed class BpeTextTokenizer : ITextTokenizer
{
    private readonly BpeSettings _s;
    private readonly BpeTokenizer _bpe;
    private readonly TokenDecoder _decoder;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocab;
    private readonly Regex? _userDefined;
    private readonly Dictionary<string, int> _userDefinedIds = new(StringComparer.Ordinal);
    private readonly int[] _byteIds = new int[256];   // <0xNN> token ids (SentencePiece style) or -1
    private readonly bool[] _missingBytes = new bool[256]; // byte-level: bytes whose character is not in the vocabulary
    private readonly bool _anyMissingByte;

    private BpeTextTokenizer(BpeSettings s, BpeTokenizer bpe)
    {
        _s = s;
        _bpe = bpe;
        _vocab = s.Vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _decoder = new TokenDecoder(s.Pieces, s.Kinds, s.ByteLevel, s.StripDummyPrefix);

        for (int id = 0; id < s.Pieces.Length; id++)
        {
            if (s.Kinds[id] == TokenKind.UserDefined && s.Pieces[id].Length > 0) _userDefinedIds.TryAdd(s.Pieces[id], id);
        }
        if (_userDefinedIds.Count > 0)
        {
            // Longest first, so that at one position the longest token wins.
            var alternatives = _userDefinedIds.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape);
            _userDefined = new Regex(string.Join('|', alternatives), RegexOptions.CultureInvariant);
        }

        for (int b = 0; b < 256; b++)
        {
            _byteIds[b] = s.Vocab.TryGetValue(TokenKinds.BytePiece(b), out int id) ? id : -1;
            _missingBytes[b] = s.ByteLevel && !s.Vocab.ContainsKey(ByteLevelAlphabet.ByteToChar[b].ToString());
            _anyMissingByte |= _missingBytes[b];
        }
    }

    public int VocabSize => _s.Pieces.Length;
    public int? BosId => _s.BosId;
    public int? EosId => _s.EosId;
    public string Kind => _s.Kind;

    /// <summary>Checks the settings and builds the library tokenizer; throws <see cref="ModelFormatException"/> on bad data.</summary>
    public static BpeTextTokenizer Create(BpeSettings s)
    {
        int n = s.Pieces.Length;
        if (n == 0) throw new ModelFormatException(s.Source, "the vocabulary is empty");
        if (s.Kinds.Length != n) throw new ModelFormatException(s.Source, $"{n} tokens but {s.Kinds.Length} token types");
        foreach (var (name, id) in new[] { ("BOS", s.BosId), ("EOS", s.EosId), ("unknown-token", s.UnkId) })
        {
            if (id is { } v && (v < 0 || v >= n))
                throw new ModelFormatException(s.Source, $"{name} id {v} is outside the vocabulary 0..{n - 1}");
        }

        var seen = new HashSet<(string, string)>();
        var merges = new List<string>(s.Merges.Count);
        foreach (string merge in s.Merges)
        {
            int space = merge.IndexOf(' ');
            if (space <= 0 || space == merge.Length - 1 || merge.IndexOf(' ', space + 1) >= 0)
                throw new ModelFormatException(s.Source, $"merge '{merge}' is not two tokens separated by one space");
            if (seen.Add((merge[..space], merge[(space + 1)..]))) merges.Add(merge); // a repeated pair keeps its first rank
        }

        string? unk = s.UnkId is { } u && s.Vocab.ContainsKey(s.Pieces[u]) ? s.Pieces[u] : null;
        try
        {
            var bpe = BpeTokenizer.Create(new BpeOptions(s.Vocab)
            {
                Merges = merges,
                ByteLevel = s.ByteLevel,
                // Byte-level words only ever hold byte characters; an absent one becomes <unk> if there is one.
                UnknownToken = s.ByteLevel ? unk : null,
                FuseUnknownTokens = s.FuseUnknown,
            });
            return new BpeTextTokenizer(s, bpe);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new ModelFormatException(s.Source, $"the BPE vocabulary or merges were rejected: {e.Message}", e);
        }
    }

    public int[] Encode(string text, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos) ids.Add(BosId ?? throw new InvalidOperationException($"{Kind}: this vocabulary has no BOS token; encode without --add-bos"));

        int pos = 0;
        if (_userDefined is not null)
        {
            var lookup = _userDefinedIds.GetAlternateLookup<ReadOnlySpan<char>>();
            foreach (ValueMatch m in _userDefined.EnumerateMatches(text))
            {
                if (m.Index > pos) EncodeSegment(text, pos, m.Index - pos, ids);
                ids.Add(lookup[text.AsSpan(m.Index, m.Length)]);
                pos = m.Index + m.Length;
            }
        }
        if (pos < text.Length) EncodeSegment(text, pos, text.Length - pos, ids);
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids) => _decoder.Decode(ids);

    private void EncodeSegment(string text, int start, int length, List<int> ids)
    {
        string segment = text.Substring(start, length);
        foreach (NormalizeStep step in _s.Normalizers) segment = step.Apply(segment);

        var pieces = new List<Piece> { new(segment, start == 0) };
        var next = new List<Piece>();
        foreach (PreTokenizeStep step in _s.PreTokenizers)
        {
            next.Clear();
            foreach (Piece p in pieces) step.Apply(p, next);
            (pieces, next) = (next, pieces);
        }

        foreach (Piece p in pieces)
        {
            if (p.Text.Length > 0) EncodeWord(p.Text, ids);
        }
    }

    private void EncodeWord(string word, List<int> ids)
    {
        if (_s.ByteLevel)
        {
            if (_s.IgnoreMerges || (_anyMissingByte && _s.UnkId is null))
            {
                int n = ByteLevelAlphabet.Encode(word, out char[] mapped);
                try
                {
                    if (_s.IgnoreMerges && _vocab.TryGetValue(mapped.AsSpan(0, n), out int whole))
                    {
                        ids.Add(whole);
                        return;
                    }
                    if (_anyMissingByte && _s.UnkId is null)
                    {
                        for (int i = 0; i < n; i++)
                        {
                            int b = ByteLevelAlphabet.ByteOf(mapped[i]);
                            if (_missingBytes[b])
                                throw new InvalidOperationException($"{Kind}: the text holds byte 0x{b:X2}, which this byte-level vocabulary lacks (and it has no unknown token)");
                        }
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<char>.Shared.Return(mapped);
                }
            }
            ids.AddRange(_bpe.EncodeToIds(word, considerPreTokenization: false, considerNormalization: false));
            return;
        }

        if (_s.IgnoreMerges && _vocab.TryGetValue(word, out int id))
        {
            ids.Add(id);
            return;
        }

        // Characters missing from the vocabulary cannot take part in any merge, so the runs between them are
        // merged on their own and each missing character becomes its byte tokens (or the unknown token).
        ReadOnlySpan<char> span = word;
        int runStart = 0;
        bool lastWasUnk = false;
        for (int i = 0; i < span.Length;)
        {
            int len = char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]) ? 2 : 1;
            if (_vocab.ContainsKey(span.Slice(i, len)))
            {
                i += len;
                continue;
            }
            if (i > runStart)
            {
                ids.AddRange(_bpe.EncodeToIds(span[runStart..i], considerPreTokenization: false, considerNormalization: false));
                lastWasUnk = false;
            }
            if (!TryAddBytes(span.Slice(i, len), ids))
            {
                int unk = _s.UnkId ?? throw new InvalidOperationException(
                    $"{Kind}: character U+{(len == 2 ? char.ConvertToUtf32(span[i], span[i + 1]) : span[i]):X4} is not in the vocabulary, which has neither byte fallback nor an unknown token");
                if (!(lastWasUnk && _s.FuseUnknown)) ids.Add(unk);
                lastWasUnk = true;
            }
            else lastWasUnk = false;
            i += len;
            runStart = i;
        }
        if (runStart < span.Length)
            ids.AddRange(_bpe.EncodeToIds(span[runStart..], considerPreTokenization: false, considerNormalization: false));
    }

    private bool TryAddBytes(ReadOnlySpan<char> character, List<int> ids)
    {
        if (!_s.ByteFallback) return false;
        Span<byte> utf8 = stackalloc byte[4];
        int n = System.Text.Encoding.UTF8.GetBytes(character, utf8);
        for (int k = 0; k < n; k++)
        {
            if (_byteIds[utf8[k]] < 0) return false;
        }
        for (int k = 0; k < n; k++) ids.Add(_byteIds[utf8[k]]);
        return true;
    }
}
