using System.Text.Json;
using LongDep.Models.Gguf;

namespace LongDep.Models.Tokenization;

/// <summary>
/// Whether the model's own tokenizer configuration prepends BOS to a text (the default of <c>--add-bos</c>): GGUF's
/// <c>tokenizer.ggml.add_bos_token</c>; a Hugging Face folder's <c>tokenizer_config.json</c> <c>add_bos_token</c>, else a
/// <c>tokenizer.json</c> post-processor whose single-sequence template starts with a special token. OPT is the exception:
/// ProLong's reference loads its tokenizer with <c>add_bos_token=False</c>, so OPT models default to no BOS.
/// Anything absent or unreadable means no BOS (the tokenizer reader reports broken files on its own).
/// </summary>
public static class BosDefault
{
    private const long MaxJsonBytes = 64L << 20;

    /// <summary>The default for a GGUF file.</summary>
    public static bool FromGguf(GgufFile file, string architecture) =>
        architecture != "opt" && file.GetBool("tokenizer.ggml.add_bos_token") == true;

    /// <summary>The default for a Hugging Face checkpoint folder.</summary>
    public static bool FromFolder(string folder, string architecture)
    {
        if (architecture == "opt") return false;
        if (ReadJson(Path.Combine(folder, "tokenizer_config.json")) is { } config)
        {
            using (config)
            {
                if (config.RootElement.ValueKind == JsonValueKind.Object
                    && config.RootElement.TryGetProperty("add_bos_token", out var add)
                    && add.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    return add.GetBoolean();
            }
        }
        if (ReadJson(Path.Combine(folder, "tokenizer.json")) is { } tokenizer)
        {
            using (tokenizer) return TemplateStartsWithSpecial(tokenizer.RootElement);
        }
        return false;
    }

    /// <summary>A TemplateProcessing post-processor (alone or inside a Sequence) whose "single" template begins with a special token.</summary>
    private static bool TemplateStartsWithSpecial(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("post_processor", out var pp)) return false;
        IEnumerable<JsonElement> processors = pp.ValueKind == JsonValueKind.Object && pp.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray()
            : [pp];
        foreach (var p in processors)
        {
            if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("type", out var type) || type.GetString() != "TemplateProcessing") continue;
            if (!p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array || single.GetArrayLength() == 0) continue;
            return single[0].ValueKind == JsonValueKind.Object && single[0].TryGetProperty("SpecialToken", out _);
        }
        return false;
    }

    private static JsonDocument? ReadJson(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > MaxJsonBytes) return null;
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }
}
