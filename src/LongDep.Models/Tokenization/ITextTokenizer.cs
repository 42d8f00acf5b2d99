namespace LongDep.Models.Tokenization;

/// <summary>A model's own tokenizer: text to token ids and back. Instances are safe to share between threads.</summary>
public interface ITextTokenizer
{
    /// <summary>Number of token ids the tokenizer knows (highest id + 1).</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, when the vocabulary has one.</summary>
    int? BosId { get; }

    /// <summary>End-of-sequence id, when the vocabulary has one.</summary>
    int? EosId { get; }

    /// <summary>What kind of tokenizer this is, for <c>longdep inspect</c> (e.g. "llama (SentencePiece BPE)").</summary>
    string Kind { get; }

    /// <summary>
    /// Encodes <paramref name="text"/>. Never adds EOS; adds one BOS at the start only when <paramref name="addBos"/>
    /// is set (throws <see cref="InvalidOperationException"/> if the vocabulary has no BOS). Control tokens written
    /// in the text (e.g. "&lt;s&gt;") are encoded as plain text.
    /// </summary>
    int[] Encode(string text, bool addBos);

    /// <summary>Decodes ids to text; control tokens (BOS, EOS, ...) produce nothing, an unknown token produces U+FFFD.</summary>
    string Decode(ReadOnlySpan<int> ids);
}
