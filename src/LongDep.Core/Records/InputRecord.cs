using System.Text.Json;

namespace LongDep.Core.Records;

/// <summary>
/// A parsed corpus record. When <see cref="Error"/> is set the record is a <c>bad_record</c> and the other
/// content fields may be null. <see cref="InputIds"/>, when present, is used as is and takes precedence over
/// <see cref="Text"/>.
/// </summary>
public sealed class InputRecord
{
    /// <summary>0-based position in the input, counting every record.</summary>
    public long Index { get; init; }
    /// <summary>The id field: a string as is, any other JSON value as its JSON text; null when absent.</summary>
    public string? Id { get; init; }
    /// <summary>The document text, when the record has one.</summary>
    public string? Text { get; init; }
    /// <summary>Token ids given by the record (non-negative, int32), when it has them.</summary>
    public int[]? InputIds { get; init; }
    /// <summary>The meta field, passed through to the output unchanged.</summary>
    public JsonElement? Meta { get; init; }
    /// <summary>Value at the domain path: a string, or the JSON text of another value; null when absent.</summary>
    public string? Domain { get; init; }
    /// <summary>Why the record is bad (not a JSON object, no text or ids, ...), or null.</summary>
    public string? Error { get; init; }
    /// <summary>FNV-1a 64 of the raw line bytes: stable across runs.</summary>
    public ulong Hash { get; init; }

    /// <summary>True when the record is a <c>bad_record</c>.</summary>
    public bool IsBad => Error is not null;

    /// <summary>
    /// Checks token ids against a model's vocabulary. Returns null when every id is in [0, vocabSize), else an
    /// error text naming the first offending position (for a <c>bad_record</c>).
    /// </summary>
    public static string? CheckVocabulary(ReadOnlySpan<int> ids, int vocabSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        for (int k = 0; k < ids.Length; k++)
        {
            if ((uint)ids[k] >= (uint)vocabSize)
                return $"token id {ids[k]} at position {k} is outside the model's vocabulary (ids 0..{vocabSize - 1}); were these ids made with another tokenizer?";
        }
        return null;
    }
}
