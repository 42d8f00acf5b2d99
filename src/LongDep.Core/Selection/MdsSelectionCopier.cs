using System.Text.Json;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;

namespace LongDep.Core.Selection;

/// <summary>
/// The streaming pass of selection when the output is an MDS dataset. From an MDS input the chosen samples are copied
/// byte for byte (same columns, same encodings); from JSON lines or Parquet each chosen record becomes a sample with the
/// columns <c>domain</c>, <c>id</c>, <c>meta</c> (json) and either <c>input_ids</c> + <c>length</c> or <c>text</c>,
/// after the first chosen record. The dataset is complete only when <c>index.json</c> is written, last.
/// </summary>
public static class MdsSelectionCopier
{
    /// <summary>Copies the records at <paramref name="selectedIndices"/> (ascending) of <paramref name="inputPath"/> into the MDS dataset <paramref name="outputDirectory"/>.</summary>
    /// <returns>The number of records read and written.</returns>
    /// <exception cref="InvalidOperationException">The input does not match the scores, or records do not fit one set of columns.</exception>
    /// <param name="expectedHash">The <c>input_hash</c> the scores hold for an index (null: none): every input record is
    /// checked against it before anything is written, so scores of another input are refused instead of selecting other records.</param>
    public static (long Read, long Written) Copy(string inputPath, IReadOnlyList<long> selectedIndices, string outputDirectory,
        MdsWriterOptions writerOptions, long? expectedRecordCount = null, RecordFieldOptions? fields = null,
        Func<long, ulong?>? expectedHash = null)
    {
        ArgumentNullException.ThrowIfNull(selectedIndices);
        for (int k = 1; k < selectedIndices.Count; k++)
            if (selectedIndices[k] <= selectedIndices[k - 1])
                throw new ArgumentException("selected indices must be ascending and distinct.", nameof(selectedIndices));
        if (SamePath(inputPath, outputDirectory))
            throw new InvalidOperationException($"the output '{outputDirectory}' is the input: choose another output folder");
        if (expectedHash is not null) CheckHashes(inputPath, fields, expectedHash);
        return CorpusReader.DetectFormat(inputPath) == CorpusFormat.Mds
            ? CopySamples(MdsDataset.Open(inputPath), selectedIndices, outputDirectory, writerOptions, expectedRecordCount)
            : WriteRecords(inputPath, selectedIndices, outputDirectory, writerOptions, expectedRecordCount, fields ?? RecordFieldOptions.Default);
    }

    /// <summary>A first pass over the input: every record's bytes against the scores' input_hash.</summary>
    private static void CheckHashes(string inputPath, RecordFieldOptions? fields, Func<long, ulong?> expectedHash)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(inputPath));
        foreach (RawRecord raw in CorpusReader.Open(inputPath, fields))
        {
            if (expectedHash(raw.Index) is { } want && Fnv1a64.Hash(raw.Line.Span) is var have && have != want)
                throw new InvalidOperationException(
                    $"record {raw.Index} of {name} is not the record that was scored (its hash {have:x16}, the scores' input_hash {want:x16}); give the input the scores were computed from");
        }
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)), StringComparison.Ordinal);

    private static (long, long) CopySamples(MdsDataset input, IReadOnlyList<long> selected, string output, MdsWriterOptions options, long? expected)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(input.Directory));
        if (expected is { } e && e != input.SampleCount)
            throw new InvalidOperationException($"the scores cover {e} records but {name} has {input.SampleCount}; is --input the dataset that was scored?");
        if (selected.Count > 0 && selected[^1] >= input.SampleCount)
            throw new InvalidOperationException($"the scores select record {selected[^1]} but {name} has only {input.SampleCount} records; is --input the dataset that was scored?");
        IReadOnlyList<MdsColumn> columns = input.CommonColumns
            ?? throw new InvalidOperationException($"the shards of {name} have different columns, which one MDS output cannot hold; write --format jsonl");
        using var writer = new MdsWriter(output, columns, options, overwrite: true);
        if (!writer.Columns.Select(c => c.Name).SequenceEqual(columns.Select(c => c.Name)))
            throw new InvalidOperationException($"the columns of {name} are not sorted by name as MDSWriter writes them; write --format jsonl");
        int next = 0;
        long written = 0;
        for (int s = 0; s < input.Shards.Count && next < selected.Count; s++)
        {
            MdsShardInfo info = input.Shards[s];
            if (selected[next] >= info.FirstSample + info.Samples) continue; // nothing chosen here: not even read
            MdsShard shard = input.LoadShard(s);
            while (next < selected.Count && selected[next] < info.FirstSample + info.Samples)
            {
                writer.WriteEncoded(shard.SampleBytes((int)(selected[next] - info.FirstSample)));
                written++;
                next++;
            }
        }
        writer.Finish();
        return (input.SampleCount, written);
    }

    private static (long, long) WriteRecords(string inputPath, IReadOnlyList<long> selected, string output, MdsWriterOptions options, long? expected,
        RecordFieldOptions fields)
    {
        string name = Path.GetFileName(inputPath);
        var parser = new RecordParser(fields);
        MdsWriter? writer = null;
        bool ids = false;
        long read = 0, written = 0;
        int next = 0;
        try
        {
            foreach (RawRecord raw in CorpusReader.Open(inputPath, fields))
            {
                read++;
                if (next >= selected.Count || raw.Index != selected[next]) continue;
                InputRecord r = parser.Parse(raw);
                if (r.IsBad)
                    throw new InvalidOperationException($"record {raw.Index} of {name} was selected but cannot be read ({r.Error}); is --input the file that was scored?");
                if (writer is null)
                {
                    ids = r.InputIds is not null;
                    MdsColumn[] columns = ids
                        ? [new("domain", MdsEncoding.Str), new("id", MdsEncoding.Str), new("input_ids", MdsEncoding.NdArrayUInt32), new("length", MdsEncoding.Int32), new("meta", MdsEncoding.JsonText)]
                        : [new("domain", MdsEncoding.Str), new("id", MdsEncoding.Str), new("meta", MdsEncoding.JsonText), new("text", MdsEncoding.Str)];
                    writer = new MdsWriter(output, columns, options, overwrite: true);
                }
                if ((r.InputIds is not null) != ids)
                    throw new InvalidOperationException(
                        $"record {raw.Index} of {name} has {(ids ? "text" : "input_ids")} but the first chosen record has {(ids ? "input_ids" : "text")}; an MDS dataset has one set of columns: write --format jsonl");
                if (ids && r.InputIds!.Length == 0)
                    throw new InvalidOperationException($"record {raw.Index} of {name} has an empty input_ids, which MDS cannot store; write --format jsonl");
                writer.BeginSample();
                writer.WriteString(r.Domain ?? "");
                writer.WriteString(r.Id ?? "");
                if (ids)
                {
                    writer.WriteIntArray(r.InputIds);
                    writer.WriteInteger(r.InputIds!.Length);
                    writer.WriteJson(r.Meta?.GetRawText() ?? "null");
                }
                else
                {
                    writer.WriteJson(r.Meta?.GetRawText() ?? "null");
                    writer.WriteString(r.Text!);
                }
                writer.EndSample();
                written++;
                next++;
            }
            if (next < selected.Count)
                throw new InvalidOperationException($"the scores select record {selected[next]} but {name} has only {read} records; is --input the file that was scored?");
            if (expected is { } e && e != read)
                throw new InvalidOperationException($"the scores cover {e} records but {name} has {read}; is --input the file that was scored?");
            writer ??= new MdsWriter(output, [new("domain", MdsEncoding.Str), new("id", MdsEncoding.Str), new("meta", MdsEncoding.JsonText), new("text", MdsEncoding.Str)],
                options, overwrite: true);
            writer.Finish();
            return (read, written);
        }
        finally
        {
            writer?.Dispose();
        }
    }
}
