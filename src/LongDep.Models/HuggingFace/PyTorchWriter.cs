using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace LongDep.Models.HuggingFace;

/// <summary>
/// Writes float32 tensors as a Hugging Face PyTorch checkpoint (<c>pytorch_model.bin</c>, or shards plus
/// <c>pytorch_model.bin.index.json</c>) in the zip layout <c>torch.save</c> uses: a protocol-2 pickle of an
/// OrderedDict of <c>torch._utils._rebuild_tensor_v2</c> calls, one uncompressed storage record per array, a
/// <c>version</c> and a <c>byteorder</c> record. Tensors given the same array share one storage (as tied weights do in
/// torch). For test models and for comparing with PyTorch, which reads these files with <c>torch.load</c>.
/// </summary>
public static class PyTorchWriter
{
    private const int ChunkElements = 1 << 16;

    /// <summary>
    /// Writes <paramref name="tensors"/> into <paramref name="folder"/> (created if needed) as <c>pytorch_model.bin</c>,
    /// or, when <paramref name="maxShardBytes"/> &gt; 0 and the data does not fit in one shard of that size, as
    /// <c>pytorch_model-0000k-of-0000n.bin</c> plus the index. Files left from the other layout are deleted.
    /// </summary>
    /// <returns>The paths of the files written (shards first, then the index when sharded).</returns>
    public static IReadOnlyList<string> Write(string folder, IEnumerable<(string Name, float[] Data, long[] Shape)> tensors,
        TensorType dtype, long maxShardBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(tensors);
        var storageType = StorageTypeOf(dtype);
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, data, shape) in list) CheckTensor(name, data, shape, names);

        // Shards by storage bytes; a storage shared by two tensors is written once, with the first of them.
        var shards = new List<List<(string, float[], long[])>>();
        var current = new List<(string, float[], long[])>();
        long size = 0;
        var placed = new HashSet<float[]>(ReferenceEqualityComparer.Instance);
        foreach (var t in list)
        {
            long bytes = placed.Contains(t.Data) ? 0 : t.Data.LongLength * storageType.ElementSize;
            if (maxShardBytes > 0 && current.Count > 0 && size + bytes > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                size = 0;
                placed.Clear();
                bytes = t.Data.LongLength * storageType.ElementSize;
            }
            placed.Add(t.Data);
            current.Add(t);
            size += bytes;
        }
        shards.Add(current);

        Directory.CreateDirectory(folder);
        string single = Path.Combine(folder, PyTorchCheckpoint.SingleFile);
        string index = Path.Combine(folder, PyTorchCheckpoint.IndexFile);
        var shardNames = shards.Count == 1
            ? [PyTorchCheckpoint.SingleFile]
            : Enumerable.Range(1, shards.Count).Select(k => $"pytorch_model-{k:D5}-of-{shards.Count:D5}.bin").ToList();
        var written = new List<string>();
        for (int s = 0; s < shards.Count; s++)
        {
            string path = Path.Combine(folder, shardNames[s]);
            WriteFile(path, Path.GetFileNameWithoutExtension(shardNames[s]), shards[s], storageType);
            written.Add(path);
        }
        if (shards.Count == 1)
        {
            File.Delete(index);
        }
        else
        {
            File.Delete(single);
            WriteIndex(index, shards, shardNames, storageType);
            written.Add(index);
        }
        return written;
    }

    /// <summary>One file: every tensor a full, row-major view of its array's storage.</summary>
    internal static void WriteFile(string path, string prefix, IReadOnlyList<(string Name, float[] Data, long[] Shape)> tensors, TorchStorageType type)
    {
        var storages = new List<(float[] Data, TorchStorageType Type)>();
        var keyOf = new Dictionary<float[], int>(ReferenceEqualityComparer.Instance);
        var views = new List<TorchView>();
        foreach (var (name, data, shape) in tensors)
        {
            if (!keyOf.TryGetValue(data, out int key))
            {
                key = storages.Count;
                keyOf.Add(data, key);
                storages.Add((data, type));
            }
            views.Add(new TorchView(name, key, 0, shape, RowMajorStrides(shape)));
        }
        WriteArchive(path, prefix, views, storages);
    }

    /// <summary>A tensor entry of a state dict: a view (elements) into storage number <see cref="Storage"/>.</summary>
    internal sealed record TorchView(string Name, int Storage, long Offset, long[] Shape, long[] Stride);

    /// <summary>
    /// Writes a torch.save archive with the given views and storages (storage k becomes record <c>data/k</c>),
    /// under a temporary name renamed when complete.
    /// </summary>
    internal static void WriteArchive(string path, string prefix, IReadOnlyList<TorchView> views,
        IReadOnlyList<(float[] Data, TorchStorageType Type)> storages, bool withByteorder = true)
    {
        string tmp = path + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
            {
                WriteRecord(zip, prefix + "/data.pkl", s => s.Write(Pickle(views, storages)));
                if (withByteorder) WriteRecord(zip, prefix + "/byteorder", s => s.Write("little"u8));
                for (int k = 0; k < storages.Count; k++)
                {
                    var (data, type) = storages[k];
                    WriteRecord(zip, $"{prefix}/data/{k}", s => WriteData(s, data, type));
                }
                WriteRecord(zip, prefix + "/version", s => s.Write("3\n"u8));
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    private static void WriteRecord(ZipArchive zip, string name, Action<Stream> write)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
        using var s = entry.Open();
        write(s);
    }

    /// <summary>The protocol-2 pickle of an OrderedDict of <c>_rebuild_tensor_v2</c> calls, as torch.save writes it.</summary>
    internal static byte[] Pickle(IReadOnlyList<TorchView> views, IReadOnlyList<(float[] Data, TorchStorageType Type)> storages)
    {
        var p = new PickleBuilder();
        p.Op(0x80).Op(2);                                   // PROTO 2
        p.Global("collections", "OrderedDict").Op('q').Op(0); // BINPUT 0
        p.Op(')').Op('R');                                    // OrderedDict()
        p.Op('(');                                            // MARK: the items
        foreach (var v in views)
        {
            var (data, type) = storages[v.Storage];
            p.Str(v.Name);
            p.Global("torch._utils", "_rebuild_tensor_v2");
            p.Op('(');
            p.Op('(').Str("storage").Global("torch", type.ClassName).Str(v.Storage.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Str("cpu").Int(data.LongLength).Op('t').Op('Q');   // persistent id → BINPERSID
            p.Int(v.Offset);
            p.Op('(');
            foreach (long d in v.Shape) p.Int(d);
            p.Op('t');
            p.Op('(');
            foreach (long d in v.Stride) p.Int(d);
            p.Op('t');
            p.Op(0x89);                                       // requires_grad = False
            p.Op('h').Op(0).Op(')').Op('R');                  // backward_hooks = OrderedDict()
            p.Op('t').Op('R');
        }
        p.Op('u').Op('.');                                    // SETITEMS, STOP
        return p.ToArray();
    }

    private sealed class PickleBuilder
    {
        private readonly MemoryStream _ms = new();

        public PickleBuilder Op(int b)
        {
            _ms.WriteByte((byte)b);
            return this;
        }

        public PickleBuilder Global(string module, string name)
        {
            Op('c');
            _ms.Write(Encoding.UTF8.GetBytes(module + "\n" + name + "\n"));
            return this;
        }

        public PickleBuilder Str(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(len, bytes.Length);
            Op('X');
            _ms.Write(len);
            _ms.Write(bytes);
            return this;
        }

        public PickleBuilder Int(long v)
        {
            Span<byte> b = stackalloc byte[8];
            if (v is >= 0 and < 256) return Op('K').Op((int)v);
            if (v is >= 0 and < 65536)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v);
                Op('M');
                _ms.Write(b[..2]);
                return this;
            }
            if (v is >= int.MinValue and <= int.MaxValue)
            {
                BinaryPrimitives.WriteInt32LittleEndian(b, (int)v);
                Op('J');
                _ms.Write(b[..4]);
                return this;
            }
            BinaryPrimitives.WriteInt64LittleEndian(b, v);
            Op(0x8a).Op(8);
            _ms.Write(b);
            return this;
        }

        public byte[] ToArray() => _ms.ToArray();
    }

    private static void WriteData(Stream s, float[] data, TorchStorageType type)
    {
        if (type.Type == TensorType.F32)
        {
            for (int i = 0; i < data.Length; i += ChunkElements)
                s.Write(MemoryMarshal.AsBytes(data.AsSpan(i, Math.Min(ChunkElements, data.Length - i))));
            return;
        }
        var scratch = new ushort[Math.Min(ChunkElements, Math.Max(1, data.Length))];
        for (int i = 0; i < data.Length; i += ChunkElements)
        {
            int n = Math.Min(ChunkElements, data.Length - i);
            var chunk = scratch.AsSpan(0, n);
            if (type.Type == TensorType.F16)
                TensorPrimitives.ConvertToHalf(data.AsSpan(i, n), MemoryMarshal.Cast<ushort, Half>(chunk));
            else
                SafetensorsFormat.SingleToBf16(data.AsSpan(i, n), chunk);
            s.Write(MemoryMarshal.AsBytes(chunk));
        }
    }

    private static void WriteIndex(string path, List<List<(string Name, float[] Data, long[] Shape)>> shards, List<string> shardNames, TorchStorageType type)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            long total = shards.Sum(s => s.Select(t => t.Data).Distinct(ReferenceEqualityComparer.Instance).Cast<float[]>().Sum(d => d.LongLength * type.ElementSize));
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", total);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            for (int s = 0; s < shards.Count; s++)
                foreach (var t in shards[s]) w.WriteString(t.Name, shardNames[s]);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        string tmp = path + ".tmp";
        File.WriteAllBytes(tmp, ms.ToArray());
        File.Move(tmp, path, overwrite: true);
    }

    internal static TorchStorageType StorageTypeOf(TensorType dtype) => dtype switch
    {
        TensorType.F32 => TorchStorageType.Known["FloatStorage"],
        TensorType.F16 => TorchStorageType.Known["HalfStorage"],
        TensorType.BF16 => TorchStorageType.Known["BFloat16Storage"],
        _ => throw new ArgumentException($"PyTorch checkpoint writing supports F32, F16 and BF16, not {dtype}"),
    };

    internal static long[] RowMajorStrides(long[] shape)
    {
        var stride = new long[shape.Length];
        long s = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            stride[d] = s;
            s *= Math.Max(1, shape[d]);
        }
        return stride;
    }

    private static void CheckTensor(string name, float[] data, long[] shape, HashSet<string> names)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("a tensor has an empty name");
        if (!names.Add(name)) throw new ArgumentException($"tensor '{name}' is given twice");
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
}
