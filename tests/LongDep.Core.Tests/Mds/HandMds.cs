using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace LongDep.Core.Tests.Mds;

/// <summary>
/// Builds MDS bytes by hand from the format's documented layout (mosaicml-streaming's MDSWriter and encodings), with no
/// code of the engine: the independent side of the reader and writer tests.
/// </summary>
internal static class HandMds
{
    /// <summary>A column as the index names it; <paramref name="Size"/> is the fixed size, or null for variable.</summary>
    public sealed record Col(string Name, string Encoding, int? Size);

    public static byte[] Str(string s) => Encoding.UTF8.GetBytes(s);

    public static byte[] Int32(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        return b;
    }

    public static byte[] Int64(long v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        return b;
    }

    /// <summary>A uint32 1-D ndarray value for encoding <c>ndarray:uint32</c>: [ndim&lt;&lt;2 | shape dtype][shape][values].</summary>
    public static byte[] UInt32Array(params uint[] values) => Array(values.SelectMany(v => Le(v, 4)).ToArray(), dtypeCode: null, [values.Length]);

    /// <summary>An ndarray value: optional dtype code byte, then shape (smallest uint that fits) and element bytes.</summary>
    public static byte[] Array(byte[] elements, byte? dtypeCode, int[] shape)
    {
        var bytes = new List<byte>();
        if (dtypeCode is { } code) bytes.Add(code);
        int max = shape.Max();
        int shapeCode = max < 256 ? 0 : max < 65536 ? 1 : 2;
        bytes.Add((byte)((shape.Length << 2) | shapeCode));
        foreach (int d in shape) bytes.AddRange(Le((ulong)d, 1 << shapeCode));
        bytes.AddRange(elements);
        return bytes.ToArray();
    }

    public static byte[] Le(ulong v, int size)
    {
        var b = new byte[size];
        for (int k = 0; k < size; k++) b[k] = (byte)(v >> (8 * k));
        return b;
    }

    /// <summary>One sample: uint32 size of each variable-size column, then the values in column order.</summary>
    public static byte[] Sample(Col[] columns, byte[][] values)
    {
        var bytes = new List<byte>();
        for (int c = 0; c < columns.Length; c++)
            if (columns[c].Size is null) bytes.AddRange(Le((ulong)values[c].Length, 4));
        foreach (byte[] v in values) bytes.AddRange(v);
        return bytes.ToArray();
    }

    /// <summary>A shard: uint32 n, uint32 offsets[n + 1] (absolute), the config JSON, the samples.</summary>
    public static byte[] Shard(byte[][] samples, string config = "{\"format\": \"mds\"}")
    {
        byte[] cfg = Encoding.UTF8.GetBytes(config);
        int n = samples.Length;
        long offset = 4 + 4 * (n + 1) + cfg.Length;
        var bytes = new List<byte>();
        bytes.AddRange(Le((ulong)n, 4));
        foreach (byte[] s in samples.Prepend([]))
        {
            offset += s.Length;
            bytes.AddRange(Le((ulong)offset, 4));
        }
        bytes.AddRange(cfg);
        foreach (byte[] s in samples) bytes.AddRange(s);
        return bytes.ToArray();
    }

    public static string Sha1(byte[] data) => Convert.ToHexString(SHA1.HashData(data)).ToLowerInvariant();

    /// <summary>One shard's entry of index.json, pretty-printed as merge tools write it.</summary>
    public static string ShardEntry(Col[] columns, int samples, string rawName, byte[] raw, string? zipName = null, byte[]? zip = null)
    {
        string Q(string s) => "\"" + s + "\"";
        string File(string name, byte[] data) => $"{{\n \"basename\": {Q(name)},\n \"bytes\": {data.Length},\n \"hashes\": {{\"sha1\": {Q(Sha1(data))}}}\n}}";
        return "{\n" +
               $"  \"column_encodings\": [{string.Join(", ", columns.Select(c => Q(c.Encoding)))}],\n" +
               $"  \"column_names\": [{string.Join(", ", columns.Select(c => Q(c.Name)))}],\n" +
               $"  \"column_sizes\": [{string.Join(", ", columns.Select(c => c.Size?.ToString() ?? "null"))}],\n" +
               $"  \"compression\": {(zip is null ? "null" : Q("zstd"))},\n" +
               "  \"format\": \"mds\",\n  \"hashes\": [\"sha1\"],\n" +
               $"  \"raw_data\": {File(rawName, raw)},\n" +
               $"  \"samples\": {samples},\n  \"size_limit\": 67108864,\n  \"version\": 2,\n" +
               $"  \"zip_data\": {(zip is null ? "null" : File(zipName!, zip))}\n}}";
    }

    public static string Index(params string[] shardEntries) => "{\"shards\": [" + string.Join(",\n", shardEntries) + "], \"version\": 2}";

    /// <summary>Parses a shard by the documented layout: the samples' bytes.</summary>
    public static byte[][] SplitShard(byte[] shard)
    {
        int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(shard);
        var offsets = Enumerable.Range(0, n + 1).Select(k => (int)BinaryPrimitives.ReadUInt32LittleEndian(shard.AsSpan(4 + 4 * k))).ToArray();
        Assert.That(offsets[n], Is.EqualTo(shard.Length), "the last offset is the shard's end");
        return Enumerable.Range(0, n).Select(k => shard[offsets[k]..offsets[k + 1]]).ToArray();
    }

    /// <summary>Splits a sample into its column values by the documented layout.</summary>
    public static byte[][] SplitSample(Col[] columns, byte[] sample)
    {
        int at = 0;
        var sizes = new int[columns.Length];
        for (int c = 0; c < columns.Length; c++)
        {
            if (columns[c].Size is { } s) sizes[c] = s;
            else
            {
                sizes[c] = (int)BinaryPrimitives.ReadUInt32LittleEndian(sample.AsSpan(at));
                at += 4;
            }
        }
        var values = new byte[columns.Length][];
        for (int c = 0; c < columns.Length; c++)
        {
            values[c] = sample[at..(at + sizes[c])];
            at += sizes[c];
        }
        Assert.That(at, Is.EqualTo(sample.Length), "the columns fill the sample exactly");
        return values;
    }

    /// <summary>Decodes a 1-D ndarray value of fixed dtype uint32 by the documented layout.</summary>
    public static uint[] ReadUInt32Array(byte[] value)
    {
        int ndim = value[0] >> 2, shapeBytes = 1 << (value[0] & 3);
        Assert.That(ndim, Is.EqualTo(1));
        ulong n = 0;
        for (int k = 0; k < shapeBytes; k++) n |= (ulong)value[1 + k] << (8 * k);
        int at = 1 + shapeBytes;
        Assert.That(value.Length - at, Is.EqualTo((int)n * 4));
        return Enumerable.Range(0, (int)n).Select(k => BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(at + 4 * k))).ToArray();
    }

    /// <summary>Decodes a 2-D uint32 ndarray (index pairs) by the documented layout.</summary>
    public static (uint Start, uint End)[] ReadPairs(byte[] value)
    {
        int ndim = value[0] >> 2, shapeBytes = 1 << (value[0] & 3);
        Assert.That(ndim, Is.EqualTo(2));
        ulong rows = 0, cols = 0;
        for (int k = 0; k < shapeBytes; k++)
        {
            rows |= (ulong)value[1 + k] << (8 * k);
            cols |= (ulong)value[1 + shapeBytes + k] << (8 * k);
        }
        Assert.That(cols, Is.EqualTo(2UL));
        int at = 1 + 2 * shapeBytes;
        Assert.That(value.Length - at, Is.EqualTo((int)rows * 8));
        return Enumerable.Range(0, (int)rows)
            .Select(r => (BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(at + 8 * r)), BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(at + 8 * r + 4))))
            .ToArray();
    }
}
