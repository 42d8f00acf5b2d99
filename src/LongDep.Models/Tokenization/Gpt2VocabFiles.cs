using System.Text;
using System.Text.Json;

namespace LongDep.Models.Tokenization;

/// <summary>
/// Reads the files of a GPT-2 style (byte-level BPE) tokenizer as Hugging Face's slow <c>GPT2Tokenizer</c> does:
/// <c>vocab.json</c> (token → id, tokens written in the byte-level alphabet), <c>merges.txt</c> (one "left right"
/// merge a line, in rank order, after a <c>#version</c> line), and from <c>tokenizer_config.json</c> /
/// <c>special_tokens_map.json</c> the special tokens, the added tokens and <c>add_prefix_space</c>. OPT, GPT-2,
/// RoBERTa and GPT-J checkpoints ship their tokenizer this way. Words are split with the GPT-2 regex.
/// </summary>
internal static class Gpt2VocabFiles
{
    public const string VocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";

    private const long MaxFileBytes = 64L << 20;
    private const int MaxId = (1 << 24) - 1;

    private static readonly string[] SpecialKeys =
        ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    /// <summary>Whether <paramref name="folder"/> has both vocab.json and merges.txt.</summary>
    public static bool Exist(string folder) =>
        File.Exists(Path.Combine(folder, VocabFile)) && File.Exists(Path.Combine(folder, MergesFile));

    /// <summary>The tokenizer settings (BOS/EOS left unset). Malformed files throw <see cref="ModelFormatException"/>.</summary>
    public static BpeSettings Load(string folder)
    {
        string vocabPath = Path.Combine(folder, VocabFile);
        string mergesPath = Path.Combine(folder, MergesFile);

        // vocab.json: {"token": id, ...}
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int maxId = -1;
        using (var doc = ParseJson(vocabPath))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(vocabPath, $"expected a JSON object of token → id, found {doc.RootElement.ValueKind}");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0 || id > MaxId)
                    throw new ModelFormatException(vocabPath, $"token '{p.Name}' has id {p.Value.GetRawText()}, expected an integer in 0..{MaxId}");
                if (!vocab.TryAdd(p.Name, id))
                    throw new ModelFormatException(vocabPath, $"token '{p.Name}' is listed twice");
                maxId = Math.Max(maxId, id);
            }
        }
        if (vocab.Count == 0) throw new ModelFormatException(vocabPath, "the vocabulary is empty");

        // Added tokens (ids may lie past vocab.json) and the special tokens named by the config files.
        var config = ReadOptionalJson(folder, "tokenizer_config.json");
        var map = ReadOptionalJson(folder, "special_tokens_map.json");
        var added = new List<(int Id, string Content, bool Special)>();
        if (config is { } c && c.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
        {
            string src = Path.Combine(folder, "tokenizer_config.json");
            foreach (var p in decoder.EnumerateObject())
            {
                if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id > MaxId
                    || p.Value.ValueKind != JsonValueKind.Object || TokenText(p.Value) is not { } content)
                    throw new ModelFormatException(src, $"added_tokens_decoder entry '{p.Name}' needs an id in 0..{MaxId} and a 'content'");
                bool special = p.Value.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True;
                added.Add((id, content, special));
            }
        }
        string addedPath = Path.Combine(folder, "added_tokens.json");
        if (File.Exists(addedPath))
        {
            using var doc = ParseJson(addedPath);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(addedPath, $"expected a JSON object of token → id, found {doc.RootElement.ValueKind}");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0 || id > MaxId)
                    throw new ModelFormatException(addedPath, $"token '{p.Name}' has id {p.Value.GetRawText()}, expected an integer in 0..{MaxId}");
                if (!added.Any(a => a.Id == id)) added.Add((id, p.Name, false));
            }
        }
        foreach (var (id, _, _) in added) maxId = Math.Max(maxId, id);
        if (maxId >= vocab.Count + added.Count + 65536)
            throw new ModelFormatException(vocabPath, $"token ids are too sparse: the highest is {maxId} for {vocab.Count + added.Count} tokens");

        var pieces = new string[maxId + 1];
        var kinds = new TokenKind[maxId + 1];
        Array.Fill(pieces, "");
        Array.Fill(kinds, TokenKind.Control); // ids nobody defines decode to nothing
        var defined = new bool[maxId + 1];
        foreach (var (token, id) in vocab)
        {
            if (defined[id])
                throw new ModelFormatException(vocabPath, $"id {id} is given to both '{pieces[id]}' and '{token}'");
            defined[id] = true;
            pieces[id] = token;
            kinds[id] = TokenKind.Normal;
        }
        foreach (var (id, content, special) in added)
        {
            if (defined[id] && pieces[id] != content)
                throw new ModelFormatException(Path.Combine(folder, "tokenizer_config.json"),
                    $"added token '{content}' has id {id}, which vocab.json gives to '{pieces[id]}'");
            pieces[id] = content;
            kinds[id] = special ? TokenKind.Control : TokenKind.UserDefined;
            if (!vocab.ContainsKey(content)) vocab[content] = id;
        }

        // Tokens the config files name as special are control tokens, whatever vocab.json says.
        var specials = new List<string>();
        foreach (var json in new[] { config, map })
        {
            if (json is not { } j) continue;
            foreach (string key in SpecialKeys)
                if (j.TryGetProperty(key, out var v) && TokenText(v) is { } t) specials.Add(t);
            if (j.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind == JsonValueKind.Array)
                foreach (var e in extra.EnumerateArray())
                    if (TokenText(e) is { } t) specials.Add(t);
        }
        foreach (string s in specials)
            if (vocab.TryGetValue(s, out int id)) kinds[id] = TokenKind.Control;

        var merges = ReadMerges(mergesPath);
        bool prefixSpace = config is { } cfg && cfg.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True;

        return new BpeSettings
        {
            Source = vocabPath,
            Kind = "gpt2 (byte-level BPE, vocab.json + merges.txt" + (prefixSpace ? ", prefix space" : "") + ")",
            Pieces = pieces,
            Kinds = kinds,
            Vocab = vocab,
            Merges = merges,
            ByteLevel = true,
            // The slow GPT2Tokenizer puts one space before the whole text when add_prefix_space is set.
            Normalizers = prefixSpace ? [new PrependStep(" ")] : [],
            PreTokenizers = [new ByteLevelStep(AddPrefixSpace: false, UseRegex: true)],
        };
    }

    /// <summary>merges.txt: an optional "#version" first line, then "left right" lines; blank lines are skipped.</summary>
    private static List<string> ReadMerges(string path)
    {
        var bytes = ReadSmall(path);
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ModelFormatException(path, "is not valid UTF-8 text", e);
        }
        var merges = new List<string>();
        int lineNo = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new ModelFormatException(path, $"line {lineNo} is '{(line.Length > 60 ? line[..60] + "..." : line)}', expected two tokens separated by one space");
            merges.Add(line);
        }
        return merges;
    }

    /// <summary>A token given as "text" or as {"content": "text", ...}.</summary>
    private static string? TokenText(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => null,
    };

    private static byte[] ReadSmall(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (fs.Length > MaxFileBytes)
                throw new ModelFormatException(path, $"is {fs.Length} bytes, more than the {MaxFileBytes}-byte limit for a tokenizer file");
            var bytes = new byte[fs.Length];
            fs.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"cannot read: {e.Message}", e);
        }
    }

    private static JsonDocument ParseJson(string path)
    {
        var bytes = ReadSmall(path);
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, $"not valid JSON: {e.Message}", e);
        }
    }

    private static JsonElement? ReadOptionalJson(string folder, string name)
    {
        string path = Path.Combine(folder, name);
        if (!File.Exists(path)) return null;
        using var doc = ParseJson(path);
        return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
    }
}
