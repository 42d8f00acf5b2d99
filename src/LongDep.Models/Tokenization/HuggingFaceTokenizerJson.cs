using System.Text.Json;
using System.Text.RegularExpressions;

namespace LongDep.Models.Tokenization;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> whose model is BPE: byte-level (ByteLevel pre-tokenizer, optional
/// Split regexes) or SentencePiece-style (Metaspace pre-tokenizer or Prepend/Replace normalizers, byte fallback).
/// Added tokens marked special are control tokens (never matched in text); the others are matched in text.
/// </summary>
internal static class HuggingFaceTokenizerJson
{
    private sealed class UnsupportedException(string problem) : Exception(problem);

    /// <summary>Compiles a pre-tokenizer regex; a pattern .NET cannot read is a <see cref="ModelFormatException"/>.</summary>
    public static Regex CompileRegex(string pattern, string source)
    {
        try
        {
            return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new ModelFormatException(source, $"pre-tokenizer regex {pattern} cannot be used by .NET: {e.Message}");
        }
    }

    /// <summary>
    /// Returns the settings, or null with <paramref name="unsupported"/> saying what this tokenizer.json needs that
    /// is not supported (a non-BPE model, an unknown normalizer...). Malformed files throw <see cref="ModelFormatException"/>.
    /// BOS/EOS are left unset.
    /// </summary>
    public static BpeSettings? Load(string path, out string? unsupported)
    {
        unsupported = null;
        JsonDocument doc;
        try
        {
            using var stream = File.OpenRead(path);
            doc = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, $"not valid JSON: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new ModelFormatException(path, $"cannot read: {e.Message}", e);
        }

        using (doc)
        {
            try
            {
                return Read(doc.RootElement, path);
            }
            catch (UnsupportedException e)
            {
                unsupported = e.Message;
                return null;
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException) // a JsonElement of an unexpected kind
            {
                throw new ModelFormatException(path, $"unexpected JSON layout: {e.Message}", e);
            }
        }
    }

    private static JsonElement? Get(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static IEnumerable<JsonElement> Items(JsonElement obj, string name) =>
        Get(obj, name) is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray() : [];

    private static bool GetBool(JsonElement obj, string name, bool fallback) => Get(obj, name) is { } v ? v.GetBoolean() : fallback;

    private static string? GetString(JsonElement obj, string name) => Get(obj, name) is { } v ? v.GetString() : null;

    private static BpeSettings Read(JsonElement root, string path)
    {
        if (Get(root, "model") is not { ValueKind: JsonValueKind.Object } model)
            throw new ModelFormatException(path, "has no 'model' object; expected a Hugging Face tokenizers file");
        string? type = GetString(model, "type") ?? (Get(model, "merges") is not null ? "BPE" : null);
        if (type != "BPE")
            throw new UnsupportedException($"tokenizer.json model type '{type ?? "(none)"}' is not supported (only BPE)");
        foreach (string affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (GetString(model, affix) is { Length: > 0 } value)
                throw new UnsupportedException($"BPE {affix} '{value}' is not supported");
        }

        // Vocabulary and added tokens.
        if (Get(model, "vocab") is not { ValueKind: JsonValueKind.Object } vocabJson)
            throw new ModelFormatException(path, "model.vocab is missing or not an object");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int maxId = -1;
        foreach (var p in vocabJson.EnumerateObject())
        {
            if (!p.Value.TryGetInt32(out int id) || id < 0 || id >= 1 << 24)
                throw new ModelFormatException(path, $"model.vocab['{p.Name}'] = {p.Value} is not an id in 0..16777215");
            vocab[p.Name] = id;
            maxId = Math.Max(maxId, id);
        }
        var added = new List<(int Id, string Content, bool Special)>();
        if (Get(root, "added_tokens") is { ValueKind: JsonValueKind.Array } addedJson)
        {
            foreach (var t in addedJson.EnumerateArray())
            {
                if (Get(t, "id") is not { } idJson || !idJson.TryGetInt32(out int id) || id < 0 || id >= 1 << 24 || GetString(t, "content") is not { } content)
                    throw new ModelFormatException(path, $"added token {t} needs an 'id' in 0..16777215 and a 'content'");
                added.Add((id, content, GetBool(t, "special", false)));
                maxId = Math.Max(maxId, id);
            }
        }
        if (maxId < 0) throw new ModelFormatException(path, "model.vocab is empty");
        if (maxId >= vocab.Count + added.Count + 65536)
            throw new ModelFormatException(path, $"token ids are too sparse: the highest is {maxId} for {vocab.Count + added.Count} tokens");

        var pieces = new string[maxId + 1];
        var kinds = new TokenKind[maxId + 1];
        Array.Fill(pieces, "");
        Array.Fill(kinds, TokenKind.Control); // ids nobody defines decode to nothing
        foreach (var (token, id) in vocab)
        {
            if (kinds[id] != TokenKind.Control)
                throw new ModelFormatException(path, $"model.vocab gives id {id} to both '{pieces[id]}' and '{token}'");
            pieces[id] = token;
            kinds[id] = TokenKind.Normal;
        }
        foreach (var (id, content, special) in added)
        {
            pieces[id] = content;
            kinds[id] = special ? TokenKind.Control : TokenKind.UserDefined;
        }

        // Merges: "a b" strings, or ["a", "b"] pairs (newer files).
        var merges = new List<string>();
        if (Get(model, "merges") is { ValueKind: JsonValueKind.Array } mergesJson)
        {
            foreach (var m in mergesJson.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String) merges.Add(m.GetString()!);
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].GetString() is { } a && m[1].GetString() is { } b)
                {
                    if (a.Contains(' ') || b.Contains(' '))
                        throw new UnsupportedException($"merge [\"{a}\", \"{b}\"] has a token containing a space");
                    merges.Add($"{a} {b}");
                }
                else throw new ModelFormatException(path, $"model.merges entry {m} is neither \"a b\" nor [\"a\", \"b\"]");
            }
        }

        bool byteFallback = GetBool(model, "byte_fallback", false);
        int? unkId = null;
        if (GetString(model, "unk_token") is { } unkToken)
        {
            int found = Array.IndexOf(pieces, unkToken);
            if (found < 0) throw new ModelFormatException(path, $"model.unk_token '{unkToken}' is not in the vocabulary");
            unkId = found;
            kinds[found] = TokenKind.Unknown;
        }

        // Normalizer and pre-tokenizer.
        var notes = new List<string>();
        var normalizers = new List<NormalizeStep>();
        if (Get(root, "normalizer") is { } normalizer) ReadNormalizer(normalizer, normalizers, notes, path);
        var pre = new List<PreTokenizeStep>();
        if (Get(root, "pre_tokenizer") is { } preJson) ReadPreTokenizer(preJson, pre, path);

        bool byteLevel = pre.Any(p => p is ByteLevelStep);
        bool metaspace = pre.Any(p => p is MetaspaceStep);
        bool spStyle = !byteLevel && (metaspace || byteFallback || normalizers.Count > 0);
        if (!byteLevel && !spStyle)
            throw new UnsupportedException("a BPE model without ByteLevel or Metaspace pre-tokenization (or SentencePiece-style normalizers) is not supported");
        if (byteLevel && (metaspace || byteFallback))
            throw new UnsupportedException("ByteLevel pre-tokenization mixed with Metaspace or byte fallback is not supported");

        if (spStyle && byteFallback)
        {
            for (int b = 0; b < 256; b++)
            {
                if (vocab.TryGetValue(TokenKinds.BytePiece(b), out int id) && kinds[id] == TokenKind.Normal) kinds[id] = TokenKind.Byte;
            }
        }

        bool prefixAdded = normalizers.OfType<PrependStep>().Any() || pre.OfType<MetaspaceStep>().Any(m => m.Prepend != MetaspacePrepend.Never);
        bool? decoderStrips = Get(root, "decoder") is { } decoder ? DecoderStripsPrefix(decoder) : null;
        bool ignoreMerges = GetBool(model, "ignore_merges", false);

        string details = string.Concat(
            byteFallback ? ", byte fallback" : "",
            ignoreMerges ? ", whole-word lookup" : "",
            string.Concat(notes.Select(n => ", " + n)));
        return new BpeSettings
        {
            Source = path,
            Kind = (byteLevel ? "byte-level BPE" : "SentencePiece-style BPE") + $" (tokenizer.json{details})",
            Pieces = pieces,
            Kinds = kinds,
            Vocab = vocab,
            Merges = merges,
            ByteLevel = byteLevel,
            Normalizers = normalizers,
            PreTokenizers = pre,
            ByteFallback = byteFallback,
            FuseUnknown = GetBool(model, "fuse_unk", false),
            IgnoreMerges = ignoreMerges,
            StripDummyPrefix = !byteLevel && (decoderStrips ?? prefixAdded),
            UnkId = unkId,
        };
    }

    private static void ReadNormalizer(JsonElement n, List<NormalizeStep> steps, List<string> notes, string path)
    {
        string? type = GetString(n, "type");
        switch (type)
        {
            case "Sequence":
                foreach (var inner in Items(n, "normalizers")) ReadNormalizer(inner, steps, notes, path);
                break;
            case "Prepend":
                steps.Add(new PrependStep(GetString(n, "prepend") ?? throw new ModelFormatException(path, "Prepend normalizer without 'prepend'")));
                break;
            case "Replace":
                string from = Get(n, "pattern") is { } pattern && GetString(pattern, "String") is { } s
                    ? s : throw new UnsupportedException("Replace normalizer with a regex pattern is not supported");
                steps.Add(new ReplaceStep(from, GetString(n, "content") ?? ""));
                break;
            case "NFC" or "NFKC" or "NFD" or "NFKD":
                // .NET's string.Normalize does nothing under InvariantGlobalization; text already in this form is unaffected.
                notes.Add($"{type} normalizer not applied");
                break;
            default:
                throw new UnsupportedException($"normalizer '{type}' is not supported");
        }
    }

    private static void ReadPreTokenizer(JsonElement p, List<PreTokenizeStep> steps, string path)
    {
        string? type = GetString(p, "type");
        switch (type)
        {
            case "Sequence":
                foreach (var inner in Items(p, "pretokenizers")) ReadPreTokenizer(inner, steps, path);
                break;
            case "ByteLevel":
                steps.Add(new ByteLevelStep(GetBool(p, "add_prefix_space", true), GetBool(p, "use_regex", true)));
                break;
            case "Metaspace":
                if (GetString(p, "replacement") is { } r && r != "\u2581")
                    throw new UnsupportedException($"Metaspace replacement '{r}' is not supported (only '\u2581')");
                MetaspacePrepend prepend = GetString(p, "prepend_scheme") switch
                {
                    "always" => MetaspacePrepend.Always,
                    "first" => MetaspacePrepend.First,
                    "never" => MetaspacePrepend.Never,
                    null => GetBool(p, "add_prefix_space", true) ? MetaspacePrepend.Always : MetaspacePrepend.Never,
                    var other => throw new UnsupportedException($"Metaspace prepend_scheme '{other}' is not supported"),
                };
                steps.Add(new MetaspaceStep(prepend, GetBool(p, "split", true)));
                break;
            case "Split":
                if (GetString(p, "behavior") is var behavior && behavior != "Isolated")
                    throw new UnsupportedException($"Split pre-tokenizer behaviour '{behavior}' is not supported (only Isolated)");
                if (GetBool(p, "invert", false)) throw new UnsupportedException("inverted Split pre-tokenizer is not supported");
                string regex = Get(p, "pattern") is { } pattern
                    ? GetString(pattern, "Regex") ?? (GetString(pattern, "String") is { } literal ? Regex.Escape(literal) : null)
                      ?? throw new ModelFormatException(path, "Split pre-tokenizer pattern has neither 'Regex' nor 'String'")
                    : throw new ModelFormatException(path, "Split pre-tokenizer without 'pattern'");
                steps.Add(new RegexSplitStep(CompileRegex(regex, path)));
                break;
            case "Digits":
                steps.Add(new RegexSplitStep(CompileRegex(GetBool(p, "individual_digits", false) ? @"\p{N}" : @"\p{N}+", path)));
                break;
            default:
                throw new UnsupportedException($"pre-tokenizer '{type}' is not supported");
        }
    }

    /// <summary>Whether the decoder drops the leading space of the text (Strip start, or Metaspace with a prefix).</summary>
    private static bool DecoderStripsPrefix(JsonElement d)
    {
        switch (GetString(d, "type"))
        {
            case "Sequence":
                return Items(d, "decoders").Any(DecoderStripsPrefix);
            case "Strip":
                return GetString(d, "content") == " " && Get(d, "start") is { } start && start.GetInt32() >= 1;
            case "Metaspace":
                return GetString(d, "prepend_scheme") is { } scheme ? scheme != "never" : GetBool(d, "add_prefix_space", true);
            default:
                return false;
        }
    }
}
