namespace LongDep.Models.Tokenization;

/// <summary>
/// The tokenizer-relevant GGUF metadata (<c>tokenizer.ggml.*</c>) as plain arrays. The GGUF reader fills it;
/// <see cref="TokenizerFactory.FromGguf"/> turns it into a tokenizer.
/// </summary>
/// <param name="Model"><c>tokenizer.ggml.model</c>: "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE).</param>
/// <param name="Tokens"><c>tokenizer.ggml.tokens</c>, indexed by id.</param>
/// <param name="Scores"><c>tokenizer.ggml.scores</c> (required for "llama").</param>
/// <param name="TokenTypes"><c>tokenizer.ggml.token_type</c>: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.</param>
/// <param name="Merges"><c>tokenizer.ggml.merges</c>, "left right" (required for "gpt2").</param>
/// <param name="BosId"><c>tokenizer.ggml.bos_token_id</c>.</param>
/// <param name="EosId"><c>tokenizer.ggml.eos_token_id</c>.</param>
/// <param name="UnkId"><c>tokenizer.ggml.unknown_token_id</c>.</param>
/// <param name="AddSpacePrefix"><c>tokenizer.ggml.add_space_prefix</c> ("llama" default true).</param>
/// <param name="Pre"><c>tokenizer.ggml.pre</c>: the "gpt2" pre-tokenizer flavour; absent or unknown means the GPT-2 regex.</param>
public sealed record GgufVocabulary(
    string Model,
    string[] Tokens,
    float[]? Scores,
    int[]? TokenTypes,
    string[]? Merges,
    int? BosId, int? EosId, int? UnkId,
    bool? AddSpacePrefix,
    string? Pre);
