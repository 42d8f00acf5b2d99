using System.Text.Json;
using LongDep.Core.Records;

namespace LongDep.Core.Corpus;

/// <summary>Reads score files written by <see cref="ScoreWriter"/> back (for select, merge and report), streamed.</summary>
public static class ScoreReader
{
    /// <summary>Longest score line accepted (meta is passed through, so lines can be long).</summary>
    public const int MaxLineBytes = 64 << 20;

    /// <summary>Streams the records of <paramref name="path"/> in file order.</summary>
    /// <exception cref="CorpusFormatException">A line that is not a score record, named by its line number.</exception>
    public static IEnumerable<ScoreRecord> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"score file '{path}' does not exist.", path);
        return ReadLines(path);
    }

    private static IEnumerable<ScoreRecord> ReadLines(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan);
        foreach (ReadLine line in new LineReader(file, MaxLineBytes).ReadLines())
        {
            if (line.TooLongBytes is { } length)
                throw Bad(path, line.LineNumber, $"the line is {length} bytes long, over the {MaxLineBytes}-byte limit");
            if (ScoreHeader.IsHeader(line.Bytes))
            {
                if (line.LineNumber == 1) continue;
                throw new CorpusFormatException($"{Path.GetFileName(path)} line {line.LineNumber} is a second score header: the file joins several score files; join shards with 'longdep merge'");
            }
            yield return Parse(line.Bytes, path, line.LineNumber);
        }
    }

    /// <summary>The settings header of <paramref name="path"/> (its first line), or null when it has none.</summary>
    public static ScoreHeader? ReadHeader(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"score file '{path}' does not exist.", path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        return ReadHeader(file, path);
    }

    /// <summary>The settings header at the start of <paramref name="stream"/>, or null when its first line is not one.</summary>
    internal static ScoreHeader? ReadHeader(Stream stream, string source)
    {
        foreach (ReadLine line in new LineReader(stream, MaxLineBytes).ReadLines())
            return line.TooLongBytes is null && line.Terminated && ScoreHeader.IsHeader(line.Bytes) ? ScoreHeader.Parse(line.Bytes, source) : null;
        return null;
    }

    /// <summary>Parses one score line (without terminator).</summary>
    public static ScoreRecord Parse(ReadOnlyMemory<byte> line, string sourceName = "score line", long lineNumber = 0)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw Bad(sourceName, lineNumber, $"not valid JSON ({e.Message}); if the run was interrupted mid-line, remove the last line or rerun with resume");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            try
            {
                if (root.ValueKind != JsonValueKind.Object) throw new FormatException("expected a JSON object");
                string statusName = Required(root, "status").GetString() ?? "";
                if (!ScoreStatusNames.TryParse(statusName, out ScoreStatus status))
                    throw new FormatException($"status '{statusName}' is not one of ok, too_short, bad_record, numeric_error");
                return new ScoreRecord
                {
                    Index = Required(root, "index").GetInt64(),
                    Id = OptionalString(root, "id"),
                    Method = Required(root, "method").GetString() ?? "",
                    Status = status,
                    Score = OptionalDouble(root, "score"),
                    Tokens = Optional(root, "tokens") is { } t ? t.GetInt64() : null,
                    Domain = OptionalString(root, "domain"),
                    Layers = Optional(root, "layers") is { } layers
                        ? layers.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Null ? double.NaN : v.GetDouble()).ToArray()
                        : null,
                    PairsUsed = Optional(root, "pairs_used") is { } p ? p.GetInt32() : null,
                    Chunks = Optional(root, "chunks") is { } c ? c.GetInt32() : null,
                    Error = OptionalString(root, "error"),
                    Meta = Optional(root, "meta")?.Clone(),
                    InputHash = OptionalString(root, "input_hash") is { } h
                        ? ulong.TryParse(h, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out ulong hv)
                            ? hv
                            : throw new FormatException($"input_hash '{h}' is not 16 hex digits")
                        : null,
                };
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException or KeyNotFoundException)
            {
                throw Bad(sourceName, lineNumber, e.Message);
            }
        }
    }

    /// <summary>
    /// Prepares a score file for appending after an interrupted run: removes a final line that has no '\n'
    /// (a record cut mid-write) and returns the number of complete lines left.
    /// </summary>
    public static long TrimIncompleteTail(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        long length = file.Length;
        long lines = 0;
        long lastNewlineEnd = 0;
        var buffer = new byte[1 << 16];
        long offset = 0;
        int read;
        while ((read = file.Read(buffer, 0, buffer.Length)) > 0)
        {
            for (int k = 0; k < read; k++)
            {
                if (buffer[k] == (byte)'\n')
                {
                    lines++;
                    lastNewlineEnd = offset + k + 1;
                }
            }
            offset += read;
        }
        if (lastNewlineEnd < length) file.SetLength(lastNewlineEnd);
        return lines;
    }

    private static JsonElement Required(JsonElement root, string name) =>
        root.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null
            ? v
            : throw new KeyNotFoundException($"the field '{name}' is missing");

    private static JsonElement? Optional(JsonElement root, string name) =>
        root.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static string? OptionalString(JsonElement root, string name) => Optional(root, name)?.GetString();

    private static double? OptionalDouble(JsonElement root, string name) => Optional(root, name)?.GetDouble();

    private static CorpusFormatException Bad(string source, long lineNumber, string what) =>
        new($"{Path.GetFileName(source)} line {lineNumber}: {what}. Expected a score record written by 'longdep score'.");
}
