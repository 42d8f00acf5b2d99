using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace LongDep.Models.HuggingFace;

/// <summary>
/// Writes float32 tensors as a Hugging Face safetensors checkpoint, converting to F32, F16 or BF16 on the way
/// through a small buffer (no second copy of the model is made).
/// </summary>
public static class SafetensorsWriter
{
    private const int ChunkElements = 1 << 16;

    /// <summary>
    /// Writes <paramref name="tensors"/> into <paramref name="folder"/> (created if needed) as <c>model.safetensors</c>,
    /// or, when <paramref name="maxShardBytes"/> &gt; 0 and the data does not fit in one shard of that size,
    /// as <c>model-0000k-of-0000n.safetensors</c> shards plus <c>model.safetensors.index.json</c>. A tensor larger than
    /// the limit gets a shard of its own. The sequence is enumerated twice (header first, then data) and must yield
    /// the same tensors both times. Any <c>model.safetensors</c> / index left from the other layout is deleted so the
    /// folder holds one checkpoint. Each file is written under a temporary name and renamed when complete.
    /// </summary>
    /// <returns>The paths of the files written (shards first, then the index when sharded).</returns>
    public static IReadOnlyList<string> Write(
        string folder,
        IEnumerable<(string Name, float[] Data, long[] Shape)> tensors,
        TensorType dtype,
        long maxShardBytes = 0,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors writing assumes a little-endian machine");
        string dtypeName = SafetensorsFormat.NameOf(dtype);
        int elementSize = SafetensorsFormat.SizeOf(dtype);

        // Pass 1: names, shapes and the shard plan; no data is kept.
        var plan = new List<(string Name, long[] Shape, long Bytes)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, data, shape) in tensors)
        {
            CheckTensor(name, data, shape, names);
            plan.Add((name, (long[])shape.Clone(), data.LongLength * elementSize));
        }
        var shards = PlanShards(plan, maxShardBytes);

        Directory.CreateDirectory(folder);
        string singlePath = Path.Combine(folder, SafetensorsFormat.SingleFile);
        string indexPath = Path.Combine(folder, SafetensorsFormat.IndexFile);
        var fileMeta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
            foreach (var (k, v) in metadata) fileMeta[k] = v;

        var shardNames = shards.Count == 1
            ? [SafetensorsFormat.SingleFile]
            : Enumerable.Range(1, shards.Count).Select(k => $"model-{k:D5}-of-{shards.Count:D5}.safetensors").ToList();

        // Pass 2: data, shard by shard, in the same order.
        var written = new List<string>();
        using (var e = tensors.GetEnumerator())
        {
            for (int s = 0; s < shards.Count; s++)
            {
                var (first, count) = shards[s];
                string path = Path.Combine(folder, shardNames[s]);
                WriteFile(path, plan.GetRange(first, count), e, dtype, dtypeName, fileMeta);
                written.Add(path);
            }
            if (e.MoveNext())
                throw new InvalidOperationException("the tensor sequence yielded more tensors on the second enumeration than on the first");
        }

        if (shards.Count == 1)
        {
            File.Delete(indexPath);
        }
        else
        {
            File.Delete(singlePath);
            WriteIndex(indexPath, plan, shards, shardNames);
            written.Add(indexPath);
        }
        return written;
    }

    private static void CheckTensor(string name, float[] data, long[] shape, HashSet<string> names)
    {
        if (string.IsNullOrEmpty(name) || name == "__metadata__")
            throw new ArgumentException($"invalid tensor name '{name}'");
        if (!names.Add(name))
            throw new ArgumentException($"tensor '{name}' is given twice");
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': negative dimension in shape {Architectures.FormatShape(shape)}");
            count = checked(count * d);
        }
        if (count != data.LongLength)
            throw new ArgumentException($"tensor '{name}': shape {Architectures.FormatShape(shape)} has {count} elements but the data has {data.LongLength}");
    }

    /// <summary>Groups consecutive tensors into shards of at most <paramref name="maxShardBytes"/> data bytes (one shard when 0).</summary>
    private static List<(int First, int Count)> PlanShards(List<(string Name, long[] Shape, long Bytes)> plan, long maxShardBytes)
    {
        var shards = new List<(int, int)>();
        int start = 0;
        long size = 0;
        for (int i = 0; i < plan.Count; i++)
        {
            long b = plan[i].Bytes;
            if (maxShardBytes > 0 && i > start && size + b > maxShardBytes)
            {
                shards.Add((start, i - start));
                start = i;
                size = 0;
            }
            size += b;
        }
        shards.Add((start, plan.Count - start));
        return shards;
    }

    private static void WriteFile(string path, List<(string Name, long[] Shape, long Bytes)> entries,
        IEnumerator<(string Name, float[] Data, long[] Shape)> source, TensorType dtype, string dtypeName,
        IReadOnlyDictionary<string, string> metadata)
    {
        byte[] header = BuildHeader(entries, dtypeName, metadata);
        string tmp = path + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> prefix = stackalloc byte[8];
                SafetensorsFormat.WriteHeaderLength(prefix, header.Length);
                fs.Write(prefix);
                fs.Write(header);
                foreach (var entry in entries)
                {
                    if (!source.MoveNext())
                        throw new InvalidOperationException("the tensor sequence yielded fewer tensors on the second enumeration than on the first");
                    var (name, data, shape) = source.Current;
                    if (name != entry.Name || !shape.AsSpan().SequenceEqual(entry.Shape) || data.LongLength * SafetensorsFormat.SizeOf(dtype) != entry.Bytes)
                        throw new InvalidOperationException($"the tensor sequence changed between enumerations at '{entry.Name}'");
                    WriteData(fs, data, dtype);
                }
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    /// <summary>The JSON header, padded with spaces so the data section starts 8-byte aligned.</summary>
    private static byte[] BuildHeader(List<(string Name, long[] Shape, long Bytes)> entries, string dtypeName,
        IReadOnlyDictionary<string, string> metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            foreach (var (name, shape, bytes) in entries)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtypeName);
                w.WriteStartArray("shape");
                foreach (long d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - (ms.Length % 8)) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private static void WriteData(Stream fs, float[] data, TensorType dtype)
    {
        if (dtype == TensorType.F32)
        {
            for (int i = 0; i < data.Length; i += ChunkElements)
            {
                int n = Math.Min(ChunkElements, data.Length - i);
                fs.Write(MemoryMarshal.AsBytes(data.AsSpan(i, n)));
            }
            return;
        }

        ushort[] scratch = ArrayPool<ushort>.Shared.Rent(ChunkElements);
        try
        {
            for (int i = 0; i < data.Length; i += ChunkElements)
            {
                int n = Math.Min(ChunkElements, data.Length - i);
                var src = data.AsSpan(i, n);
                var dst = scratch.AsSpan(0, n);
                if (dtype == TensorType.F16)
                    TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<ushort, Half>(dst));
                else
                    SafetensorsFormat.SingleToBf16(src, dst);
                fs.Write(MemoryMarshal.AsBytes(dst));
            }
        }
        finally
        {
            ArrayPool<ushort>.Shared.Return(scratch);
        }
    }

    private static void WriteIndex(string indexPath, List<(string Name, long[] Shape, long Bytes)> plan,
        List<(int First, int Count)> shards, List<string> shardNames)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", plan.Sum(p => p.Bytes));
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            for (int s = 0; s < shards.Count; s++)
                for (int i = shards[s].First; i < shards[s].First + shards[s].Count; i++)
                    w.WriteString(plan[i].Name, shardNames[s]);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        string tmp = indexPath + ".tmp";
        File.WriteAllBytes(tmp, ms.ToArray());
        File.Move(tmp, indexPath, overwrite: true);
    }
}
