namespace LongDep.Models.Tokenization;

/// <summary>Builds a model's tokenizer from GGUF metadata or from a Hugging Face checkpoint folder.</summary>
public static class TokenizerFactory
{
    private const string GgufSource = "GGUF tokenizer metadata";

    /// <summary>
    /// "llama": SentencePiece BPE (scores, byte fallback &lt;0xNN&gt;, '▁' for spaces, add_space_prefix).
    /// "gpt2": byte-level BPE with merges and the pre-tokenizer named by <see cref="GgufVocabulary.Pre"/>.
    /// Throws <see cref="ModelFormatException"/> for other models or inconsistent arrays.
    /// </summary>
    public static ITextTokenizer FromGguf(GgufVocabulary v)
    {
        ArgumentNullException.ThrowIfNull(v);
        string src = GgufSource;
        if (v.Tokens is null || v.Tokens.Length == 0) throw new ModelFormatException(src, "tokenizer.ggml.tokens is missing or empty");
        int n = v.Tokens.Length;
        if (Array.IndexOf(v.Tokens, null) is >= 0 and var hole) throw new ModelFormatException(src, $"tokenizer.ggml.tokens[{hole}] is null");
        if (n > 1 << 24) throw new ModelFormatException(src, $"tokenizer.ggml.tokens has {n} entries; at most 16777216 are supported");
        if (v.TokenTypes is { } types && types.Length != n)
            throw new ModelFormatException(src, $"tokenizer.ggml.token_type has {types.Length} entries, tokenizer.ggml.tokens has {n}");
        foreach (var (key, id) in new[] { ("bos_token_id", v.BosId), ("eos_token_id", v.EosId), ("unknown_token_id", v.UnkId) })
        {
            if (id is { } i && (i < 0 || i >= n))
                throw new ModelFormatException(src, $"tokenizer.ggml.{key} = {i} is outside the vocabulary 0..{n - 1}");
        }

        var kinds = new TokenKind[n];
        for (int i = 0; i < n; i++)
            kinds[i] = v.TokenTypes is { } t ? TokenKinds.FromCode(t[i], src, i) : TokenKind.Normal;
        if (v.TokenTypes is null)
        {
            // Without types, the ids the metadata names are the special tokens.
            if (v.UnkId is { } u) kinds[u] = TokenKind.Unknown;
            if (v.BosId is { } b) kinds[b] = TokenKind.Control;
            if (v.EosId is { } e) kinds[e] = TokenKind.Control;
        }

        return v.Model switch
        {
            "llama" => FromGgufSentencePiece(v, kinds),
            "gpt2" => FromGgufByteLevel(v, kinds),
            _ => throw new ModelFormatException(src,
                $"tokenizer.ggml.model '{v.Model}' is not supported (supported: llama = SentencePiece BPE, gpt2 = byte-level BPE)"),
        };
    }

    private static ITextTokenizer FromGgufSentencePiece(GgufVocabulary v, TokenKind[] kinds)
    {
        string src = GgufSource;
        int n = v.Tokens.Length;
        if (v.Scores is null) throw new ModelFormatException(src, "tokenizer.ggml.scores is missing; a 'llama' (SentencePiece) vocabulary needs scores");
        if (v.Scores.Length != n) throw new ModelFormatException(src, $"tokenizer.ggml.scores has {v.Scores.Length} entries, tokenizer.ggml.tokens has {n}");

        // Byte fallback needs all of <0x00>..<0xFF>; they are byte tokens whatever the types say.
        var byteIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            if (TokenKinds.TryParseBytePiece(v.Tokens[i], out byte b) && v.Tokens[i] == TokenKinds.BytePiece(b)) byteIds.TryAdd(v.Tokens[i], i);
        }
        bool byteFallback = byteIds.Count > 0;
        for (int b = 0; b < 256 && byteFallback; b++)
        {
            if (!byteIds.TryGetValue(TokenKinds.BytePiece(b), out int id))
                throw new ModelFormatException(src, $"byte-fallback tokens are incomplete: {TokenKinds.BytePiece(b)} is missing (a SentencePiece vocabulary has all of <0x00>..<0xFF> or none)");
            kinds[id] = TokenKind.Byte;
        }

        int? unk = v.UnkId;
        if (unk is null && Array.IndexOf(kinds, TokenKind.Unknown) is >= 0 and var typed) unk = typed;
        if (unk is null && v.TokenTypes is null && Array.IndexOf(v.Tokens, "<unk>") is >= 0 and var named) unk = named;
        if (unk is { } u) kinds[u] = TokenKind.Unknown;

        bool prefix = v.AddSpacePrefix ?? true;
        return SentencePieceTextTokenizer.Create(new SentencePieceVocab
        {
            Source = src,
            Kind = "llama (SentencePiece BPE" + (byteFallback ? ", byte fallback" : "") + (prefix ? "" : ", no space prefix") + ")",
            Pieces = v.Tokens,
            Scores = v.Scores,
            Kinds = kinds,
            ByteFallback = byteFallback,
            AddDummyPrefix = prefix,
            UnkId = unk,
            BosId = v.BosId,
            EosId = v.EosId,
        });
    }

    private static ITextTokenizer FromGgufByteLevel(GgufVocabulary v, TokenKind[] kinds)
    {
        string src = GgufSource;
        if (v.Merges is null) throw new ModelFormatException(src, "tokenizer.ggml.merges is missing; a 'gpt2' (byte-level BPE) vocabulary needs merges");
        var vocab = new Dictionary<string, int>(v.Tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < v.Tokens.Length; i++) vocab.TryAdd(v.Tokens[i], i); // a repeated token keeps its first id

        var (pattern, ignoreMerges, label) = PreTokenizerPatterns.ForGgufPre(v.Pre);
        return BpeTextTokenizer.Create(new BpeSettings
        {
            Source = src,
            Kind = $"gpt2 (byte-level BPE, pre-tokenizer {label})",
            Pieces = v.Tokens,
            Kinds = kinds,
            Vocab = vocab,
            Merges = v.Merges,
            ByteLevel = true,
            PreTokenizers = [new RegexSplitStep(HuggingFaceTokenizerJson.CompileRegex(pattern, src))],
            IgnoreMerges = ignoreMerges,
            UnkId = v.UnkId,
            BosId = v.BosId,
            EosId = v.EosId,
        });
    }

    /// <summary>
    /// From a checkpoint folder: <c>tokenizer.json</c> (a BPE model, byte-level or SentencePiece-style with byte
    /// fallback) when present, else GPT-2's <c>vocab.json</c> + <c>merges.txt</c> (byte-level BPE, as OPT ships it),
    /// else <c>tokenizer.model</c> (a SentencePiece BPE proto). BOS/EOS are taken from tokenizer_config.json,
    /// special_tokens_map.json or config.json, then from the SentencePiece model. No BOS is added unless the caller asks
    /// (OPT's own tokenizer would prepend <c>&lt;/s&gt;</c>; ProLong's scorer turns that off).
    /// </summary>
    public static ITextTokenizer FromHuggingFaceFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
            throw new ModelFormatException(folder, "folder not found; expected a Hugging Face checkpoint folder with tokenizer.json, vocab.json + merges.txt or tokenizer.model");

        string json = Path.Combine(folder, "tokenizer.json");
        string model = Path.Combine(folder, "tokenizer.model");
        string? jsonProblem = null;
        if (File.Exists(json))
        {
            var settings = HuggingFaceTokenizerJson.Load(json, out jsonProblem);
            if (settings is not null)
            {
                var (bos, eos) = HuggingFaceSpecialTokens.Resolve(folder, settings.Pieces, settings.Kinds);
                return BpeTextTokenizer.Create(settings with { BosId = bos, EosId = eos });
            }
            if (!File.Exists(model) && !Gpt2VocabFiles.Exist(folder)) throw new ModelFormatException(json, jsonProblem!);
        }

        if (Gpt2VocabFiles.Exist(folder))
        {
            var settings = Gpt2VocabFiles.Load(folder);
            var (bos, eos) = HuggingFaceSpecialTokens.Resolve(folder, settings.Pieces, settings.Kinds);
            if (jsonProblem is not null) settings = settings with { Kind = settings.Kind[..^1] + $"; tokenizer.json skipped: {jsonProblem})" };
            return BpeTextTokenizer.Create(settings with { BosId = bos, EosId = eos });
        }

        if (File.Exists(model))
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(model);
            }
            catch (IOException e)
            {
                throw new ModelFormatException(model, $"cannot read: {e.Message}", e);
            }
            var proto = SentencePieceModelProto.Parse(bytes, model);
            return FromSentencePieceModel(proto, folder, model, jsonProblem);
        }

        throw new ModelFormatException(folder, "no tokenizer found: looked for tokenizer.json, vocab.json + merges.txt and tokenizer.model");
    }

    private static ITextTokenizer FromSentencePieceModel(SentencePieceModelProto p, string folder, string path, string? jsonProblem)
    {
        int n = p.Pieces.Length;
        if (n == 0) throw new ModelFormatException(path, "the SentencePiece model has no pieces");
        if (p.ModelType != SentencePieceModelProto.ModelTypeBpe)
            throw new ModelFormatException(path,
                $"SentencePiece model type '{SentencePieceModelProto.ModelTypeName(p.ModelType)}' is not supported; only BPE (Llama-family) models are");
        if (p.TreatWhitespaceAsSuffix)
            throw new ModelFormatException(path, "treat_whitespace_as_suffix is set; only SentencePiece models that mark a space before a word are supported");
        if (!p.EscapeWhitespaces)
            throw new ModelFormatException(path, "escape_whitespaces is off; only SentencePiece models that write spaces as '\u2581' are supported");

        int? Id(int id) => id >= 0 && id < n ? id : null;
        var (bos, eos) = HuggingFaceSpecialTokens.Resolve(folder, p.Pieces, p.Kinds);
        string notes = string.Concat(
            p.ByteFallback ? ", byte fallback" : "",
            p.AddDummyPrefix ? "" : ", no space prefix",
            p.HasPrecompiledCharsmap ? $", normalizer '{p.NormalizerName}' not applied" : "",
            jsonProblem is null ? "" : $"; tokenizer.json skipped: {jsonProblem}");
        return SentencePieceTextTokenizer.Create(new SentencePieceVocab
        {
            Source = path,
            Kind = $"SentencePiece BPE (tokenizer.model{notes})",
            Pieces = p.Pieces,
            Scores = p.Scores,
            Kinds = p.Kinds,
            ByteFallback = p.ByteFallback,
            AddDummyPrefix = p.AddDummyPrefix,
            RemoveExtraWhitespaces = p.RemoveExtraWhitespaces,
            UnkId = Id(p.UnkId),
            BosId = bos ?? Id(p.BosId),
            EosId = eos ?? Id(p.EosId),
        });
    }
}
