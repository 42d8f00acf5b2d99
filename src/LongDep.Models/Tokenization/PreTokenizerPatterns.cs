namespace LongDep.Models.Tokenization;

/// <summary>
/// The word-splitting regexes of byte-level BPE tokenizers, by the names GGUF's <c>tokenizer.ggml.pre</c> uses.
/// .NET matches UTF-16 code units, so a letter or digit outside the Basic Multilingual Plane (e.g. U+1D400) is not
/// \p{L}/\p{N} here and may split differently from the Rust/Python originals.
/// </summary>
internal static class PreTokenizerPatterns
{
    /// <summary>GPT-2 (also the ByteLevel pre-tokenizer's built-in regex).</summary>
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Llama 3: case-insensitive contractions, digits in groups of up to three.</summary>
    public const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2: as Llama 3 but one digit per piece.</summary>
    public const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>
    /// The regex and the ignore-merges flag for a GGUF pre-tokenizer name, and a label for <see cref="ITextTokenizer.Kind"/>.
    /// Unknown names fall back to the GPT-2 regex and say so in the label.
    /// </summary>
    public static (string Pattern, bool IgnoreMerges, string Label) ForGgufPre(string? pre) => pre switch
    {
        null or "" or "default" or "gpt2" or "gpt-2" => (Gpt2, false, "GPT-2 regex"),
        "llama3" or "llama-v3" or "llama-bpe" => (Llama3, true, $"'{pre}': Llama 3 regex, whole-word lookup"),
        "qwen2" => (Qwen2, false, "'qwen2' regex"),
        _ => (Gpt2, false, $"'{pre}' not recognised, GPT-2 regex used"),
    };
}
