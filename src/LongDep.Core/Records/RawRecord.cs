namespace LongDep.Core.Records;

/// <summary>
/// One record as read from the corpus, before parsing: the bytes of its JSON line (for Parquet, a JSON line built
/// from the row's columns). <see cref="Error"/> is set when the line could not be read whole (e.g. over-long).
/// </summary>
/// <param name="Index">0-based position in the input, counting every record.</param>
/// <param name="Line">The line's bytes without its line terminator; empty when <see cref="Error"/> is set.</param>
/// <param name="Error">Why the line is unusable, or null.</param>
public sealed record RawRecord(long Index, ReadOnlyMemory<byte> Line, string? Error = null)
{
    /// <summary>
    /// For JSON lines: the offset in the decompressed stream just past the record's line, so that a record can be held
    /// back until the compressed frame holding it has passed its check; 0 when unknown (Parquet).
    /// </summary>
    public long EndOffset { get; init; }
}
