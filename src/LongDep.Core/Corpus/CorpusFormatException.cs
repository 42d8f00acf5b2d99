namespace LongDep.Core.Corpus;

/// <summary>A corpus or score file cannot be read on: unsupported format, truncated or corrupt compressed data, a malformed score line.</summary>
public sealed class CorpusFormatException : Exception
{
    /// <summary>Creates the exception with a message that says what was expected, what was found and what to do.</summary>
    public CorpusFormatException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the decoder's own error.</summary>
    public CorpusFormatException(string message, Exception inner) : base(message, inner) { }

    /// <summary>For damaged input: the records read whole before the damage; null otherwise.</summary>
    public long? RecordsBefore { get; init; }
}
