using System.Text.Json;

namespace LongDep.Models.Tokenization;

/// <summary>
/// Finds BOS and EOS of a Hugging Face checkpoint: the token named by tokenizer_config.json, else by
/// special_tokens_map.json ("bos_token": "&lt;s&gt;" or {"content": "&lt;s&gt;"}), else the id in config.json
/// ("bos_token_id", first entry when it is a list). Null when none says.
/// </summary>
internal static class HuggingFaceSpecialTokens
{
    public static (int? Bos, int? Eos) Resolve(string folder, string[] pieces, TokenKind[] kinds)
    {
        Dictionary<string, int>? ids = null;
        int? IdOf(string token)
        {
            if (ids is null)
            {
                ids = new Dictionary<string, int>(StringComparer.Ordinal);
                // Control and user-defined tokens first: "<s>" must find the special token.
                for (int i = 0; i < pieces.Length; i++)
                    if (kinds[i] is TokenKind.Control or TokenKind.UserDefined or TokenKind.Unknown) ids.TryAdd(pieces[i], i);
                for (int i = 0; i < pieces.Length; i++) ids.TryAdd(pieces[i], i);
            }
            return ids.TryGetValue(token, out int id) ? id : null;
        }

        int? Find(string tokenKey, string idKey)
        {
            foreach (string file in new[] { "tokenizer_config.json", "special_tokens_map.json" })
            {
                if (Read(folder, file) is { } json && Named(json, tokenKey) is { } token)
                    return IdOf(token) ?? throw new ModelFormatException(Path.Combine(folder, file), $"{tokenKey} '{token}' is not in the vocabulary");
            }
            if (Read(folder, "config.json") is { } config && config.TryGetProperty(idKey, out var v))
            {
                if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0) v = v[0];
                if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int id) && id >= 0 && id < pieces.Length) return id;
            }
            return null;
        }

        return (Find("bos_token", "bos_token_id"), Find("eos_token", "eos_token_id"));
    }

    private static string? Named(JsonElement json, string key)
    {
        if (!json.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    private static JsonElement? Read(string folder, string name)
    {
        string path = Path.Combine(folder, name);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new ModelFormatException(path, $"cannot be read as JSON: {e.Message}", e);
        }
    }
}
