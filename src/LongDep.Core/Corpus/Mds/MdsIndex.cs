using System.Text.Json;

namespace LongDep.Core.Corpus.Mds;

/// <summary>One column of an MDS shard: its name and encoding.</summary>
public sealed record MdsColumn(string Name, MdsEncoding Encoding);

/// <summary>A file the index describes: its name relative to the dataset folder, size and hashes.</summary>
public sealed record MdsFileInfo(string Basename, long Bytes, IReadOnlyDictionary<string, string> Hashes);

/// <summary>One shard as <c>index.json</c> describes it.</summary>
public sealed record MdsShardInfo
{
    /// <summary>Position of the shard in the index.</summary>
    public required int Position { get; init; }
    public required IReadOnlyList<MdsColumn> Columns { get; init; }
    /// <summary>Null for an uncompressed shard, else <c>zstd</c> or <c>zstd:LEVEL</c>.</summary>
    public string? Compression { get; init; }
    /// <summary>The uncompressed shard.</summary>
    public required MdsFileInfo RawData { get; init; }
    /// <summary>The compressed file, when the shard is compressed.</summary>
    public MdsFileInfo? ZipData { get; init; }
    public required long Samples { get; init; }
    /// <summary>Global index of the shard's first sample.</summary>
    public required long FirstSample { get; init; }

    /// <summary>The file this shard is read from (the compressed one when there is one).</summary>
    public string FileName => (ZipData ?? RawData).Basename;

    /// <summary>Index of the column named <paramref name="name"/>, or -1.</summary>
    public int ColumnIndex(string name)
    {
        for (int c = 0; c < Columns.Count; c++)
            if (Columns[c].Name == name) return c;
        return -1;
    }

    /// <summary>True when <paramref name="other"/> has the same columns (names and encodings, in order).</summary>
    public bool SameColumns(MdsShardInfo other) =>
        Columns.Count == other.Columns.Count && Columns.Zip(other.Columns).All(p => p.First.Name == p.Second.Name && p.First.Encoding.Text == p.Second.Encoding.Text);
}

/// <summary>
/// The strict reader of an MDS dataset's <c>index.json</c> (MosaicML Streaming, version 2): every field the shards need
/// is checked for presence, type and range before any shard is opened; a bad index is one
/// <see cref="CorpusFormatException"/> naming the dataset, the shard and the field.
/// </summary>
public static class MdsIndex
{
    /// <summary>The index file's name.</summary>
    public const string FileName = "index.json";

    /// <summary>Largest index accepted (1 GiB: millions of shards).</summary>
    public const long MaxIndexBytes = 1L << 30;

    /// <summary>Largest uncompressed shard read (2 GiB less a little: one .NET array).</summary>
    public const long MaxShardBytes = 0x7FFFFFC7;

    /// <summary>True when <paramref name="path"/> is a folder holding an <c>index.json</c>.</summary>
    public static bool IsDataset(string path) => Directory.Exists(path) && File.Exists(Path.Combine(path, FileName));

    /// <summary>Reads and checks the index of the dataset in <paramref name="directory"/>.</summary>
    /// <exception cref="CorpusFormatException">No index, unreadable or malformed index, unsupported format or compression.</exception>
    public static IReadOnlyList<MdsShardInfo> Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!Directory.Exists(directory))
            throw new CorpusFormatException($"MDS dataset folder '{directory}' does not exist.");
        if (!File.Exists(path))
            throw new CorpusFormatException(
                $"'{directory}' is not an MDS dataset: it has no {FileName} (a dataset whose writing was interrupted has none: rerun the command that writes it).");
        long length = new FileInfo(path).Length;
        if (length > MaxIndexBytes)
            throw new CorpusFormatException($"{path} is {length} bytes, over the {MaxIndexBytes}-byte limit for an MDS index; is it an index.json?");
        byte[] bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new CorpusFormatException($"{path} is not valid UTF-8 text; the dataset's index is damaged: rewrite or re-download it.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new CorpusFormatException($"{path} is not valid JSON ({e.Message}); the dataset is damaged: re-download or rewrite it.", e);
        }
        using (doc)
            return Parse(doc.RootElement, directory);
    }

    private static IReadOnlyList<MdsShardInfo> Parse(JsonElement root, string directory)
    {
        string where = Path.Combine(directory, FileName);
        if (root.ValueKind != JsonValueKind.Object)
            throw Bad(where, $"expected a JSON object, found {Kind(root)}");
        if (!root.TryGetProperty("version", out JsonElement version) || version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out int v) || v != 2)
            throw Bad(where, $"expected \"version\": 2 (mosaicml-streaming's index), found {Describe(root, "version")}");
        if (!root.TryGetProperty("shards", out JsonElement shards) || shards.ValueKind != JsonValueKind.Array)
            throw Bad(where, $"expected \"shards\" to be an array, found {Describe(root, "shards")}");

        var result = new List<MdsShardInfo>(shards.GetArrayLength());
        long first = 0;
        foreach (JsonElement shard in shards.EnumerateArray())
        {
            MdsShardInfo info = ParseShard(shard, result.Count, first, where);
            first += info.Samples;
            result.Add(info);
        }
        return result;
    }

    private static MdsShardInfo ParseShard(JsonElement s, int position, long first, string where)
    {
        string at = $"shard {position}";
        if (s.ValueKind != JsonValueKind.Object) throw Bad(where, $"{at} is {Kind(s)}, expected an object");
        string format = RequireString(s, "format", at, where);
        if (format != "mds")
            throw Bad(where, $"{at} is in the '{MdsEncoding.Clip(format)}' format; longdep reads MDS shards only (write the dataset with MDSWriter)", advice: false);
        if (!s.TryGetProperty("version", out JsonElement ver) || ver.ValueKind != JsonValueKind.Number || !ver.TryGetInt32(out int sv) || sv != 2)
            throw Bad(where, $"{at}: expected \"version\": 2, found {Describe(s, "version")}");

        string[] names = RequireStrings(s, "column_names", at, where);
        string[] encodings = RequireStrings(s, "column_encodings", at, where);
        if (!s.TryGetProperty("column_sizes", out JsonElement sizes) || sizes.ValueKind != JsonValueKind.Array)
            throw Bad(where, $"{at}: expected \"column_sizes\" to be an array, found {Describe(s, "column_sizes")}");
        if (names.Length == 0) throw Bad(where, $"{at} has no columns");
        if (encodings.Length != names.Length || sizes.GetArrayLength() != names.Length)
            throw Bad(where, $"{at} has {names.Length} column names, {encodings.Length} encodings and {sizes.GetArrayLength()} sizes; they must match");
        var columns = new MdsColumn[names.Length];
        int k = 0;
        foreach (JsonElement size in sizes.EnumerateArray())
        {
            if (names[k].Length == 0) throw Bad(where, $"{at}: column {k} has an empty name");
            if (Array.IndexOf(names, names[k]) != k) throw Bad(where, $"{at}: column '{MdsEncoding.Clip(names[k])}' appears twice");
            MdsEncoding encoding = MdsEncoding.TryParse(encodings[k], out string? error)
                ?? throw Bad(where, $"{at}, column '{MdsEncoding.Clip(names[k])}': {error}");
            int? stated = size.ValueKind switch
            {
                JsonValueKind.Null => null,
                JsonValueKind.Number when size.TryGetInt32(out int n) && n > 0 => n,
                _ => throw Bad(where, $"{at}, column '{MdsEncoding.Clip(names[k])}': size {MdsEncoding.Clip(size.GetRawText())} is neither null nor a positive integer"),
            };
            if (stated != encoding.FixedSize)
                throw Bad(where, $"{at}, column '{MdsEncoding.Clip(names[k])}': the index gives size {stated?.ToString() ?? "null"} but encoding '{encoding.Text}' has size {encoding.FixedSize?.ToString() ?? "null"}");
            columns[k] = new MdsColumn(names[k], encoding);
            k++;
        }

        string? compression = null;
        if (s.TryGetProperty("compression", out JsonElement comp) && comp.ValueKind != JsonValueKind.Null)
        {
            if (comp.ValueKind != JsonValueKind.String) throw Bad(where, $"{at}: \"compression\" is {Kind(comp)}, expected null or a string");
            compression = comp.GetString()!;
            if (ZstdLevel(compression) is null)
                throw Bad(where, $"{at} is compressed with '{MdsEncoding.Clip(compression)}'; longdep reads uncompressed and zstd shards (rewrite the dataset with compression='zstd' or none)", advice: false);
        }

        long samples = RequireInteger(s, "samples", 0, uint.MaxValue, at, where);
        MdsFileInfo raw = ParseFile(s, "raw_data", at, where) ?? throw Bad(where, $"{at}: \"raw_data\" is missing or null");
        MdsFileInfo? zip = ParseFile(s, "zip_data", at, where);
        if (compression is null && zip is not null)
            throw Bad(where, $"{at} has \"zip_data\" but no \"compression\"");
        if (compression is not null && zip is null)
            throw Bad(where, $"{at} is compressed ('{compression}') but has no \"zip_data\"");
        if (raw.Bytes > MaxShardBytes)
            throw Bad(where, $"{at} is {raw.Bytes} bytes uncompressed; longdep reads shards up to {MaxShardBytes} bytes (rewrite with a smaller size_limit)", advice: false);
        long header = 4 + 4 * (samples + 1);
        if (raw.Bytes < header)
            throw Bad(where, $"{at} holds {samples} samples but is {raw.Bytes} bytes, less than its {header}-byte header");
        return new MdsShardInfo
        {
            Position = position, Columns = columns, Compression = compression, RawData = raw, ZipData = zip,
            Samples = samples, FirstSample = first,
        };
    }

    /// <summary>The zstd level of a compression name (<c>zstd</c>: 3), or null when it is not zstd.</summary>
    public static int? ZstdLevel(string compression)
    {
        if (compression == "zstd") return 3;
        if (compression.StartsWith("zstd:", StringComparison.Ordinal) && int.TryParse(compression.AsSpan(5), out int level) && level is >= 1 and <= 22)
            return level;
        return null;
    }

    private static MdsFileInfo? ParseFile(JsonElement s, string field, string at, string where)
    {
        if (!s.TryGetProperty(field, out JsonElement f) || f.ValueKind == JsonValueKind.Null) return null;
        if (f.ValueKind != JsonValueKind.Object) throw Bad(where, $"{at}: \"{field}\" is {Kind(f)}, expected an object");
        string basename = RequireString(f, "basename", $"{at} {field}", where);
        if (!IsSafeRelativePath(basename))
            throw Bad(where, $"{at}: {field} basename '{MdsEncoding.Clip(basename)}' is not a relative path inside the dataset folder");
        long bytes = RequireInteger(f, "bytes", 0, long.MaxValue, $"{at} {field}", where);
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (f.TryGetProperty("hashes", out JsonElement h) && h.ValueKind != JsonValueKind.Null)
        {
            if (h.ValueKind != JsonValueKind.Object) throw Bad(where, $"{at}: {field} \"hashes\" is {Kind(h)}, expected an object");
            foreach (JsonProperty p in h.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw Bad(where, $"{at}: {field} hash '{MdsEncoding.Clip(p.Name)}' is {Kind(p.Value)}, expected a hex string");
                hashes[p.Name] = p.Value.GetString()!;
            }
        }
        return new MdsFileInfo(basename, bytes, hashes);
    }

    /// <summary>Relative, '/'-separated, no empty, '.' or '..' segment, no backslash or drive: stays inside the folder.</summary>
    internal static bool IsSafeRelativePath(string path)
    {
        if (path.Length == 0 || path.Length > 4096 || path.Contains('\\') || path.Contains('\0') || path.Contains(':') || path.StartsWith('/'))
            return false;
        foreach (string segment in path.Split('/'))
            if (segment.Length == 0 || segment == "." || segment == "..") return false;
        return true;
    }

    private static string RequireString(JsonElement o, string name, string at, string where)
    {
        if (!o.TryGetProperty(name, out JsonElement e) || e.ValueKind != JsonValueKind.String)
            throw Bad(where, $"{at}: expected \"{name}\" to be a string, found {Describe(o, name)}");
        return e.GetString()!;
    }

    private static string[] RequireStrings(JsonElement o, string name, string at, string where)
    {
        if (!o.TryGetProperty(name, out JsonElement e) || e.ValueKind != JsonValueKind.Array)
            throw Bad(where, $"{at}: expected \"{name}\" to be an array of strings, found {Describe(o, name)}");
        var result = new string[e.GetArrayLength()];
        int k = 0;
        foreach (JsonElement item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw Bad(where, $"{at}: \"{name}\"[{k}] is {Kind(item)}, expected a string");
            result[k++] = item.GetString()!;
        }
        return result;
    }

    private static long RequireInteger(JsonElement o, string name, long min, long max, string at, string where)
    {
        if (!o.TryGetProperty(name, out JsonElement e) || e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long value))
            throw Bad(where, $"{at}: expected \"{name}\" to be an integer, found {Describe(o, name)}");
        if (value < min || value > max)
            throw Bad(where, $"{at}: \"{name}\" is {value}, outside {min}..{max}");
        return value;
    }

    private static string Describe(JsonElement o, string name) =>
        o.TryGetProperty(name, out JsonElement e) ? MdsEncoding.Clip(e.GetRawText()) : "nothing";

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Null => "null",
        _ => "a boolean",
    };

    private static CorpusFormatException Bad(string where, string what, bool advice = true) =>
        new(advice ? $"{where}: {what}; the dataset's index is damaged or not from MDSWriter: rewrite or re-download it." : $"{where}: {what}.");
}
