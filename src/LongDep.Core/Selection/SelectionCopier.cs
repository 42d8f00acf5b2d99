using LongDep.Core.Corpus;
using LongDep.Core.Records;

namespace LongDep.Core.Selection;

/// <summary>
/// The streaming pass of selection: reads the input again and copies the chosen records' lines unchanged, in input
/// order, one per line. For .jsonl/.jsonl.zst/.jsonl.gz inputs these are the original line bytes; for Parquet inputs,
/// the JSON line built from each chosen row. Memory: one line at a time plus the chosen indices.
/// </summary>
public static class SelectionCopier
{
    /// <summary>Copies the records at <paramref name="selectedIndices"/> (ascending) from <paramref name="inputPath"/> to <paramref name="output"/>.</summary>
    /// <param name="inputPath">The corpus that was scored.</param>
    /// <param name="selectedIndices">Input indices to keep, ascending, no duplicates.</param>
    /// <param name="output">Where the lines go.</param>
    /// <param name="expectedRecordCount">When given, the input must hold exactly this many records (the score file's count).</param>
    /// <param name="fields">Field options (Parquet meta handling).</param>
    /// <param name="maxLineBytes">Line cap, as when scoring.</param>
    /// <param name="expectedHash">The <c>input_hash</c> the scores hold for an index (null: none): every input record is
    /// checked against it, so scores of another input (or of an input changed since) are refused instead of selecting
    /// other records.</param>
    /// <returns>The number of records read from the input and the number written.</returns>
    /// <exception cref="InvalidOperationException">The input does not match the scores (too few records, a chosen record unreadable, count mismatch).</exception>
    public static (long Read, long Written) Copy(string inputPath, IReadOnlyList<long> selectedIndices, Stream output,
        long? expectedRecordCount = null, RecordFieldOptions? fields = null, int maxLineBytes = CorpusReader.DefaultMaxLineBytes,
        Func<long, ulong?>? expectedHash = null)
    {
        ArgumentNullException.ThrowIfNull(selectedIndices);
        ArgumentNullException.ThrowIfNull(output);
        for (int k = 1; k < selectedIndices.Count; k++)
        {
            if (selectedIndices[k] <= selectedIndices[k - 1])
                throw new ArgumentException("selected indices must be ascending and distinct.", nameof(selectedIndices));
        }

        string name = Path.GetFileName(inputPath);
        long read = 0, written = 0;
        int next = 0;
        foreach (RawRecord raw in CorpusReader.Open(inputPath, fields, maxLineBytes))
        {
            read++;
            if (expectedHash?.Invoke(raw.Index) is { } want && Fnv1a64.Hash(raw.Line.Span) is var have && have != want)
                throw new InvalidOperationException(
                    $"record {raw.Index} of {name} is not the record that was scored (its hash {have:x16}, the scores' input_hash {want:x16}); give the input the scores were computed from");
            if (next < selectedIndices.Count && raw.Index == selectedIndices[next])
            {
                if (raw.Error is not null)
                    throw new InvalidOperationException(
                        $"record {raw.Index} of {name} was selected but cannot be read ({raw.Error}); is --input the file that was scored?");
                output.Write(raw.Line.Span);
                output.WriteByte((byte)'\n');
                written++;
                next++;
            }
        }
        if (next < selectedIndices.Count)
            throw new InvalidOperationException(
                $"the scores select record {selectedIndices[next]} but {name} has only {read} records; is --input the file that was scored?");
        if (expectedRecordCount is { } expected && expected != read)
            throw new InvalidOperationException(
                $"the scores cover {expected} records but {name} has {read}; is --input the file that was scored?");
        return (read, written);
    }
}
