using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace LongDep.Core.Corpus;

/// <summary>
/// The first line of a score file: everything that changes a score (method, model identity, window, chunk, ...) and
/// a fingerprint of it, so that a resumed run, a merge or a report never mixes records scored under other settings.
/// <code>{"longdep":"scores","version":1,"fingerprint":"…16 hex…","settings":{"method":"ladm","model":"…",…},"shard":"2/8"}</code>
/// Readers of score files skip it (<see cref="ScoreReader"/>); the shard, present only for <c>--shard i/N</c> with
/// N &gt; 1, is not part of the fingerprint, so merged shards carry the header of one unsharded run.
/// </summary>
public sealed class ScoreHeader
{
    /// <summary>The bytes every header line starts with.</summary>
    public static ReadOnlySpan<byte> Prefix => "{\"longdep\":\"scores\""u8;

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <param name="settings">Name → value, in the order they are written.</param>
    /// <param name="shardIndex">i of --shard i/N.</param>
    /// <param name="shardCount">N of --shard i/N (1: not sharded).</param>
    public ScoreHeader(IEnumerable<KeyValuePair<string, string>> settings, int shardIndex = 0, int shardCount = 1)
    {
        Settings = settings.ToArray();
        ShardIndex = shardIndex;
        ShardCount = shardCount;
        var canonical = new StringBuilder();
        foreach (var (k, v) in Settings) canonical.Append(k).Append('=').Append(v).Append('\n');
        Fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())))[..16];
    }

    /// <summary>The settings, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Settings { get; }

    public int ShardIndex { get; }
    public int ShardCount { get; }

    /// <summary>16 hex digits of SHA-256 over the settings.</summary>
    public string Fingerprint { get; }

    /// <summary>The value of one setting, or null.</summary>
    public string? this[string name] => Settings.FirstOrDefault(kv => kv.Key == name).Value;

    /// <summary>The same settings for shard <paramref name="index"/>/<paramref name="count"/>.</summary>
    public ScoreHeader ForShard(int index, int count) => new(Settings, index, count);

    /// <summary>The header line (without its line end).</summary>
    public byte[] Format()
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("longdep", "scores");
            w.WriteNumber("version", 1);
            w.WriteString("fingerprint", Fingerprint);
            w.WriteStartObject("settings");
            foreach (var (k, v) in Settings) w.WriteString(k, v);
            w.WriteEndObject();
            if (ShardCount > 1) w.WriteString("shard", $"{ShardIndex}/{ShardCount}");
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>True when <paramref name="line"/> is a header line.</summary>
    public static bool IsHeader(ReadOnlySpan<byte> line) => line.StartsWith(Prefix);

    /// <summary>Parses a header line.</summary>
    /// <exception cref="CorpusFormatException">The line starts like a header but is not one this version reads.</exception>
    public static ScoreHeader Parse(ReadOnlySpan<byte> line, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(line.ToArray());
            JsonElement root = doc.RootElement;
            if (root.GetProperty("version").GetInt32() != 1)
                throw new FormatException($"header version {root.GetProperty("version")} is not 1");
            var settings = root.GetProperty("settings").EnumerateObject().Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetString() ?? "")).ToList();
            int index = 0, count = 1;
            if (root.TryGetProperty("shard", out JsonElement shard))
            {
                string[] parts = (shard.GetString() ?? "").Split('/');
                if (parts.Length != 2 || !int.TryParse(parts[0], out index) || !int.TryParse(parts[1], out count) || count < 1 || index < 0 || index >= count)
                    throw new FormatException($"shard '{shard}' is not i/N");
            }
            var header = new ScoreHeader(settings, index, count);
            if (root.TryGetProperty("fingerprint", out JsonElement fp) && fp.GetString() != header.Fingerprint)
                throw new FormatException($"its fingerprint {fp.GetString()} does not match its settings ({header.Fingerprint}): the line was edited");
            return header;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            throw new CorpusFormatException($"{Path.GetFileName(source)} line 1 is not a valid score header ({e.Message}); rescore with --overwrite");
        }
    }

    /// <summary>The settings that differ from <paramref name="other"/> ("window: 32768 in the file, 16384 now"), none when equal.</summary>
    /// <param name="other">The other run's header.</param>
    /// <param name="mine">How to call this header's side ("in the file").</param>
    /// <param name="theirs">How to call the other side ("now").</param>
    /// <param name="ignore">Settings not compared.</param>
    public IReadOnlyList<string> Differences(ScoreHeader other, string mine = "in the file", string theirs = "now", ISet<string>? ignore = null)
    {
        var diffs = new List<string>();
        foreach (string name in Settings.Select(kv => kv.Key).Concat(other.Settings.Select(kv => kv.Key)).Distinct())
        {
            if (ignore?.Contains(name) == true) continue;
            string? a = this[name], b = other[name];
            if (a != b) diffs.Add($"{name}: {a ?? "(absent)"} {mine}, {b ?? "(absent)"} {theirs}");
        }
        return diffs;
    }
}
