using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace LongDep.Models.HuggingFace;

/// <summary>Facts of the safetensors format shared by the reader and the writer.</summary>
internal static class SafetensorsFormat
{
    /// <summary>File names Hugging Face uses for a single-file and a sharded checkpoint.</summary>
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>Largest JSON header we accept. Real headers are well under 1 MB; the cap keeps a corrupt length from sizing an allocation.</summary>
    public const long MaxHeaderBytes = 100L << 20;

    /// <summary>Largest index.json we read.</summary>
    public const long MaxIndexBytes = 100L << 20;

    /// <summary>Element size in bytes of each dtype the format defines (names as in the header). Unknown names have no entry.</summary>
    public static readonly IReadOnlyDictionary<string, int> DtypeSizes = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1, ["F8_E8M0"] = 1,
        ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4,
        ["I64"] = 8, ["U64"] = 8, ["F64"] = 8, ["C64"] = 8,
    };

    public static TensorType TypeOf(string dtype) => dtype switch
    {
        "F32" => TensorType.F32,
        "F16" => TensorType.F16,
        "BF16" => TensorType.BF16,
        _ => TensorType.Other,
    };

    public static string NameOf(TensorType t) => t switch
    {
        TensorType.F32 => "F32",
        TensorType.F16 => "F16",
        TensorType.BF16 => "BF16",
        _ => throw new ArgumentException($"safetensors writing supports F32, F16 and BF16, not {t}"),
    };

    public static int SizeOf(TensorType t) => t switch
    {
        TensorType.F32 => 4,
        TensorType.F16 or TensorType.BF16 => 2,
        _ => throw new ArgumentException($"safetensors writing supports F32, F16 and BF16, not {t}"),
    };

    /// <summary>bfloat16 bits to float32: the bf16 value is the upper half of the float32 bit pattern.</summary>
    public static void Bf16ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        var bits = MemoryMarshal.Cast<float, uint>(dst);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int step = Vector<ushort>.Count;
            for (; i <= src.Length - step; i += step)
            {
                Vector.Widen(new Vector<ushort>(src.Slice(i, step)), out Vector<uint> lo, out Vector<uint> hi);
                (lo << 16).CopyTo(bits.Slice(i));
                (hi << 16).CopyTo(bits.Slice(i + step / 2));
            }
        }
        for (; i < src.Length; i++) bits[i] = (uint)src[i] << 16;
    }

    /// <summary>float32 to bfloat16 bits, rounding to nearest with ties to even (as PyTorch does); NaN stays a quiet NaN.</summary>
    public static void SingleToBf16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            uint b = BitConverter.SingleToUInt32Bits(src[i]);
            if (float.IsNaN(src[i]))
            {
                dst[i] = (ushort)((b >> 16) | 0x0040);
                continue;
            }
            uint lsb = (b >> 16) & 1;
            dst[i] = (ushort)((b + 0x7FFFu + lsb) >> 16);
        }
    }

    /// <summary>Reads a whole small file after checking its size against <paramref name="cap"/>.</summary>
    public static byte[] ReadSmallFile(string path, long cap, string what)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long len = fs.Length;
            if (len > cap)
                throw new ModelFormatException(path, $"{what} is {len} bytes, more than the {cap}-byte limit; the file is not a valid {what}");
            var bytes = new byte[len];
            fs.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"cannot read {what}: {e.Message}", e);
        }
    }

    /// <summary>Parses JSON, turning syntax errors into <see cref="ModelFormatException"/>.</summary>
    public static JsonDocument ParseJson(ReadOnlyMemory<byte> utf8, string path, string what)
    {
        // The JSON reader checks UTF-8 only when a string is decoded; check it all up front instead.
        if (!System.Text.Unicode.Utf8.IsValid(utf8.Span))
            throw new ModelFormatException(path, $"{what} is not valid JSON: it is not valid UTF-8 text");
        try
        {
            return JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, $"{what} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// The properties of a JSON object, rejecting duplicate names (System.Text.Json would silently keep both,
    /// and two entries for one tensor would be ambiguous).
    /// </summary>
    public static List<JsonProperty> UniqueProperties(JsonElement obj, string path, string what)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<JsonProperty>();
        foreach (var p in obj.EnumerateObject())
        {
            if (!seen.Add(p.Name))
                throw new ModelFormatException(path, $"{what} lists '{p.Name}' twice");
            list.Add(p);
        }
        return list;
    }

    /// <summary>
    /// Opens the shards a sharded checkpoint's index names and lists every tensor with its shard, checking that each
    /// tensor lives in exactly one shard and that the index's weight_map agrees with what the shards hold. The shards
    /// are disposed when anything is wrong.
    /// </summary>
    /// <param name="indexPath">The index (<c>*.index.json</c>).</param>
    /// <param name="what">What the index is, for errors ("safetensors index").</param>
    /// <param name="holds">How a shard's own listing is named in errors ("header", "state dict").</param>
    /// <param name="open">Opens one shard file.</param>
    /// <param name="tensors">A shard's tensors by name.</param>
    /// <param name="pathOf">A shard's file path, for errors.</param>
    internal static (List<TFile> Files, Dictionary<string, (TFile File, TEntry Entry)> Entries) OpenShards<TFile, TEntry>(
        string indexPath, string what, string holds, Func<string, TFile> open,
        Func<TFile, IEnumerable<(string Name, TEntry Entry)>> tensors, Func<TFile, string> pathOf) where TFile : class, IDisposable
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var weightMap = ReadWeightMap(indexPath, what);
        var files = new List<TFile>();
        try
        {
            var byShard = new Dictionary<string, TFile>(StringComparer.Ordinal);
            foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(folder, shard);
                if (!File.Exists(shardPath))
                    throw new ModelFormatException(indexPath, $"weight_map names shard '{shard}', which is not in the folder");
                var f = open(shardPath);
                files.Add(f);
                byShard.Add(shard, f);
            }

            // Every tensor of every shard is known, and each lives in exactly one shard.
            var entries = new Dictionary<string, (TFile, TEntry)>(StringComparer.Ordinal);
            foreach (var f in files)
            {
                foreach (var (name, entry) in tensors(f))
                {
                    if (entries.TryGetValue(name, out var other))
                        throw new ModelFormatException(indexPath,
                            $"tensor '{name}' is in two shards: {Path.GetFileName(pathOf(other.Item1))} and {Path.GetFileName(pathOf(f))}");
                    entries.Add(name, (f, entry));
                }
            }
            foreach (var (name, shard) in weightMap)
            {
                if (!entries.TryGetValue(name, out var found) || !ReferenceEquals(found.Item1, byShard[shard]))
                    throw new ModelFormatException(indexPath,
                        $"weight_map puts tensor '{name}' in '{shard}', but that shard's {holds} does not list it");
            }
            return (files, entries);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads a sharded checkpoint's index.json weight_map (tensor name → shard file name), checking that shard names are plain file names.</summary>
    public static Dictionary<string, string> ReadWeightMap(string indexPath, string what)
    {
        var bytes = SafetensorsFormat.ReadSmallFile(indexPath, SafetensorsFormat.MaxIndexBytes, what);
        using var doc = SafetensorsFormat.ParseJson(bytes, indexPath, what);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(indexPath, $"expected a JSON object with a weight_map, found {doc.RootElement.ValueKind}");
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException(indexPath, "missing \"weight_map\" object (tensor name → shard file)");

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in SafetensorsFormat.UniqueProperties(map, indexPath, "weight_map"))
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new ModelFormatException(indexPath, $"weight_map entry '{p.Name}' is {p.Value.ValueKind}, expected a shard file name");
            string shard = p.Value.GetString()!;
            if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or ".." || shard.Contains('\\') || shard.Contains('\0'))
                throw new ModelFormatException(indexPath, $"weight_map entry '{p.Name}' names '{shard}', expected a file name inside the checkpoint folder");
            result.Add(p.Name, shard);
        }
        if (result.Count == 0)
            throw new ModelFormatException(indexPath, "weight_map is empty");
        return result;
    }

    public static void WriteHeaderLength(Span<byte> dst, long n) => BinaryPrimitives.WriteUInt64LittleEndian(dst, (ulong)n);
}
