using System.Text.Json;

namespace LongDep.Core.Records;

/// <summary>Outcome of scoring one record (SPEC §1).</summary>
public enum ScoreStatus
{
    /// <summary>Scored; the score is a finite number.</summary>
    Ok,
    /// <summary>Too few tokens for the method (no LADM span; fewer than two ProLong chunks).</summary>
    TooShort,
    /// <summary>The record could not be read as a document (see its error).</summary>
    BadRecord,
    /// <summary>The formula produced NaN or infinity.</summary>
    NumericError,
}

/// <summary>The JSON names of <see cref="ScoreStatus"/>: ok, too_short, bad_record, numeric_error.</summary>
public static class ScoreStatusNames
{
    /// <summary>The status as written in score files.</summary>
    public static string ToJsonName(this ScoreStatus status) => status switch
    {
        ScoreStatus.Ok => "ok",
        ScoreStatus.TooShort => "too_short",
        ScoreStatus.BadRecord => "bad_record",
        ScoreStatus.NumericError => "numeric_error",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>Parses a status name; false for anything else.</summary>
    public static bool TryParse(string? name, out ScoreStatus status)
    {
        switch (name)
        {
            case "ok": status = ScoreStatus.Ok; return true;
            case "too_short": status = ScoreStatus.TooShort; return true;
            case "bad_record": status = ScoreStatus.BadRecord; return true;
            case "numeric_error": status = ScoreStatus.NumericError; return true;
            default: status = default; return false;
        }
    }
}

/// <summary>
/// One output line (SPEC §1). Written by <see cref="Corpus.ScoreWriter"/> with the fields in this order:
/// index, id, method, status, score, tokens, domain, then layers, pairs_used, chunks when set, error when the
/// status is not ok, meta when present.
/// </summary>
public sealed record ScoreRecord
{
    /// <summary>0-based position in the input, counting every record.</summary>
    public required long Index { get; init; }
    /// <summary>The record's id, or null.</summary>
    public string? Id { get; init; }
    /// <summary>"ladm" or "prolong".</summary>
    public required string Method { get; init; }
    /// <summary>Outcome.</summary>
    public required ScoreStatus Status { get; init; }
    /// <summary>CDS or LDS; written only when <see cref="Status"/> is ok (null otherwise).</summary>
    public double? Score { get; init; }
    /// <summary>Number of tokens of the record (null when unknown, e.g. a bad record).</summary>
    public long? Tokens { get; init; }
    /// <summary>The record's domain, or null.</summary>
    public string? Domain { get; init; }
    /// <summary>LADM: CDS of each layer.</summary>
    public double[]? Layers { get; init; }
    /// <summary>ProLong: number of drawn pairs used.</summary>
    public int? PairsUsed { get; init; }
    /// <summary>ProLong: number of chunks kept.</summary>
    public int? Chunks { get; init; }
    /// <summary>Why the record is not ok.</summary>
    public string? Error { get; init; }
    /// <summary>The input's meta, passed through unchanged.</summary>
    public JsonElement? Meta { get; init; }

    /// <summary>
    /// FNV-1a 64 of the input record's bytes; written as <c>input_hash</c> (16 hex digits) so that a resumed run can
    /// check that the records already in the output belong to the same input.
    /// </summary>
    public ulong? InputHash { get; init; }
}
