using System.Buffers;
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace LongDep.Models.HuggingFace;

/// <summary>
/// The tensors of a Hugging Face safetensors checkpoint folder: <c>model.safetensors</c>, or
/// <c>model.safetensors.index.json</c> and the shards it names. Files are memory-mapped; F32, F16 and BF16
/// tensors read as float32, other dtypes are listed as <see cref="TensorType.Other"/> and cannot be read.
/// Every header is checked at open (offsets, sizes, overlaps), so reads never leave the file.
/// <see cref="ReadF32"/> may be called from several threads at once.
/// </summary>
public sealed class SafetensorsCheckpoint : ITensorSource
{
    private readonly List<MappedFile> _files;
    private readonly Dictionary<string, (MappedFile File, Entry Entry)> _entries;
    private readonly Dictionary<string, TensorInfo> _infos;
    private readonly Dictionary<string, ModelFileBytes> _mappings = new(StringComparer.Ordinal);

    private SafetensorsCheckpoint(string sourcePath, List<MappedFile> files,
        Dictionary<string, (MappedFile, Entry)> entries, IReadOnlyDictionary<string, string> metadata)
    {
        SourcePath = sourcePath;
        _files = files;
        _entries = entries;
        _infos = entries.ToDictionary(kv => kv.Key, kv => kv.Value.Item2.Info, StringComparer.Ordinal);
        Metadata = metadata;
    }

    /// <inheritdoc/>
    public string SourcePath { get; }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _infos;

    /// <summary>The <c>__metadata__</c> of the header (of the first shard when sharded).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Whether the folder holds a single-file or a sharded safetensors checkpoint.</summary>
    public static bool Exists(string folder) =>
        File.Exists(Path.Combine(folder, SafetensorsFormat.SingleFile)) || File.Exists(Path.Combine(folder, SafetensorsFormat.IndexFile));

    /// <summary>
    /// Opens the checkpoint in <paramref name="folder"/>: <c>model.safetensors</c> when present (as transformers
    /// prefers it), else <c>model.safetensors.index.json</c> and its shards.
    /// </summary>
    /// <exception cref="ModelFormatException">The folder, a file or a header is missing or malformed.</exception>
    public static SafetensorsCheckpoint Open(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
            throw new ModelFormatException(folder, "folder not found (expected a Hugging Face checkpoint folder with config.json and model.safetensors)");

        string single = Path.Combine(folder, SafetensorsFormat.SingleFile);
        string index = Path.Combine(folder, SafetensorsFormat.IndexFile);
        if (File.Exists(single)) return OpenSingle(folder, single);
        if (File.Exists(index)) return OpenSharded(folder, index);
        throw new ModelFormatException(folder,
            $"no safetensors weights: looked for {SafetensorsFormat.SingleFile} and {SafetensorsFormat.IndexFile}");
    }

    private static SafetensorsCheckpoint OpenSingle(string folder, string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var entries = new Dictionary<string, (MappedFile, Entry)>(StringComparer.Ordinal);
            foreach (var e in file.Entries) entries.Add(e.Info.Name, (file, e));
            return new SafetensorsCheckpoint(folder, [file], entries, file.Metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static SafetensorsCheckpoint OpenSharded(string folder, string indexPath)
    {
        var (files, entries) = SafetensorsFormat.OpenShards(indexPath, "safetensors index", "header", MappedFile.Open,
            f => f.Entries.Select(e => (e.Info.Name, e)), f => f.Path);
        var metadata = files.Count > 0 ? files[0].Metadata : new Dictionary<string, string>();
        return new SafetensorsCheckpoint(folder, files, entries, metadata);
    }

    /// <inheritdoc/>
    public float[] ReadF32(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_entries.TryGetValue(name, out var found))
            throw new ModelFormatException(SourcePath, $"no tensor named '{name}' in the checkpoint");
        var (file, e) = found;
        var info = e.Info;
        if (info.Type == TensorType.Other)
            throw new ModelFormatException(file.Path,
                $"tensor '{name}' has dtype {info.TypeName}; only F32, F16 and BF16 can be read (re-save the checkpoint in one of those)");
        long count = info.ElementCount;
        if (count > Array.MaxLength)
            throw new ModelFormatException(file.Path, $"tensor '{name}' has {count} elements, more than one array can hold");

        var result = new float[count];
        file.Read(e.DataOffset, info.Type, result);
        return result;
    }

    /// <summary>
    /// One tensor in its stored type (F32, F16 or BF16) as a read-only view of its file's bytes (one handle per file,
    /// opened on first use and kept alive by the weights after this checkpoint is disposed; blocks are read when needed):
    /// nothing is converted at load.
    /// </summary>
    public WeightMatrix ReadMatrix(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_entries.TryGetValue(name, out var found))
            throw new ModelFormatException(SourcePath, $"no tensor named '{name}' in the checkpoint");
        var (file, e) = found;
        var info = e.Info;
        if (info.Type == TensorType.Other)
            throw new ModelFormatException(file.Path,
                $"tensor '{name}' has dtype {info.TypeName}; only F32, F16 and BF16 can be read (re-save the checkpoint in one of those)");
        if (info.ElementCount == 0) return WeightMatrix.FromFloat32([]);
        ModelFileBytes mapping;
        lock (_mappings)
        {
            if (!_mappings.TryGetValue(file.Path, out mapping!))
                _mappings[file.Path] = mapping = ModelFileBytes.Open(file.Path);
        }
        return WeightMatrix.FromFile(info.Type, info.ElementCount, mapping, e.DataOffset);
    }

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }

    /// <summary>One tensor's header entry: <see cref="DataOffset"/> is absolute in the file.</summary>
    internal sealed record Entry(TensorInfo Info, long DataOffset);

    /// <summary>One memory-mapped safetensors file with its checked header.</summary>
    internal sealed class MappedFile : IDisposable
    {
        private const int ChunkElements = 1 << 15;
        private const int F32ChunkElements = 1 << 24;
        private readonly MemoryMappedFile? _map;
        private readonly MemoryMappedViewAccessor? _view;

        private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view,
            List<Entry> entries, Dictionary<string, string> metadata)
        {
            Path = path;
            _map = map;
            _view = view;
            Entries = entries;
            Metadata = metadata;
        }

        public string Path { get; }
        public List<Entry> Entries { get; }
        public Dictionary<string, string> Metadata { get; }

        public static MappedFile Open(string path)
        {
            if (!BitConverter.IsLittleEndian)
                throw new PlatformNotSupportedException("safetensors reading assumes a little-endian machine");

            FileStream fs;
            try
            {
                fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ModelFormatException(path, $"cannot open: {e.Message}", e);
            }

            MemoryMappedFile? map = null;
            MemoryMappedViewAccessor? view = null;
            try
            {
                long fileLength = fs.Length;
                var (entries, metadata) = ReadHeader(fs, path, fileLength);
                // A file whose data section is empty (no tensors with bytes) needs no mapping.
                if (entries.Any(e => e.Info.ByteSize > 0))
                {
                    map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                    view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                }
                else
                {
                    fs.Dispose();
                }
                return new MappedFile(path, map, view, entries, metadata);
            }
            catch (Exception e)
            {
                view?.Dispose();
                map?.Dispose();
                fs.Dispose();
                if (e is IOException or UnauthorizedAccessException)
                    throw new ModelFormatException(path, $"cannot map the file: {e.Message}", e);
                throw;
            }
        }

        /// <summary>Reads and checks the header: the length prefix, the JSON, and every entry against the file size.</summary>
        private static (List<Entry>, Dictionary<string, string>) ReadHeader(FileStream fs, string path, long fileLength)
        {
            if (fileLength < 8)
                throw new ModelFormatException(path, $"file is {fileLength} bytes, too short for the 8-byte safetensors header length");
            Span<byte> prefix = stackalloc byte[8];
            fs.ReadExactly(prefix);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (n > (ulong)SafetensorsFormat.MaxHeaderBytes)
                throw new ModelFormatException(path,
                    $"header length {n} is larger than the {SafetensorsFormat.MaxHeaderBytes}-byte limit; not a safetensors file or corrupt");
            if ((long)n > fileLength - 8)
                throw new ModelFormatException(path, $"header length {n} runs past the end of the {fileLength}-byte file (truncated?)");
            if (n < 2)
                throw new ModelFormatException(path, $"header length {n} is too small for a JSON object");

            var json = new byte[n];
            fs.ReadExactly(json);
            long dataStart = 8 + (long)n;
            long dataLength = fileLength - dataStart;

            using var doc = SafetensorsFormat.ParseJson(json, path, "safetensors header");
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, $"safetensors header must be a JSON object, found {root.ValueKind}");

            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var p in SafetensorsFormat.UniqueProperties(root, path, "safetensors header"))
            {
                if (p.Name == "__metadata__")
                {
                    ReadMetadata(p.Value, path, metadata);
                    continue;
                }
                var (info, begin, end) = ReadEntry(p.Name, p.Value, path, dataLength);
                entries.Add(new Entry(info, dataStart + begin));
                ranges.Add((begin, end, p.Name));
            }

            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < ranges.Count; i++)
            {
                var (prev, cur) = (ranges[i - 1], ranges[i]);
                if (cur.Begin < prev.End)
                    throw new ModelFormatException(path,
                        $"tensors '{prev.Name}' [{prev.Begin}, {prev.End}) and '{cur.Name}' [{cur.Begin}, {cur.End}) overlap in the data section");
            }
            return (entries, metadata);
        }

        private static void ReadMetadata(JsonElement value, string path, Dictionary<string, string> metadata)
        {
            if (value.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, $"__metadata__ must be an object of strings, found {value.ValueKind}");
            foreach (var m in SafetensorsFormat.UniqueProperties(value, path, "__metadata__"))
            {
                if (m.Value.ValueKind != JsonValueKind.String)
                    throw new ModelFormatException(path, $"__metadata__ entry '{m.Name}' is {m.Value.ValueKind}, expected a string");
                metadata[m.Name] = m.Value.GetString()!;
            }
        }

        /// <summary>Checks one tensor entry; <c>begin</c>/<c>end</c> are relative to the data section.</summary>
        private static (TensorInfo Info, long Begin, long End) ReadEntry(string name, JsonElement value, string path, long dataLength)
        {
            string Where() => $"tensor '{name}'";
            if (name.Length == 0)
                throw new ModelFormatException(path, "a tensor has an empty name");
            if (value.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(path, $"{Where()}: expected an object with dtype, shape and data_offsets, found {value.ValueKind}");

            JsonElement Field(string field, JsonValueKind kind)
            {
                if (!value.TryGetProperty(field, out var f))
                    throw new ModelFormatException(path, $"{Where()}: missing \"{field}\"");
                if (f.ValueKind != kind)
                    throw new ModelFormatException(path, $"{Where()}: \"{field}\" is {f.ValueKind}, expected {kind}");
                return f;
            }

            long NonNegative(JsonElement e, string what)
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < 0)
                    throw new ModelFormatException(path, $"{Where()}: {what} is {e.GetRawText()}, expected a non-negative integer");
                return v;
            }

            string dtype = Field("dtype", JsonValueKind.String).GetString()!;
            var shapeEl = Field("shape", JsonValueKind.Array);
            var offsetsEl = Field("data_offsets", JsonValueKind.Array);

            var shape = new long[shapeEl.GetArrayLength()];
            long count = 1;
            int k = 0;
            foreach (var d in shapeEl.EnumerateArray())
            {
                long dim = NonNegative(d, $"shape[{k}]");
                shape[k++] = dim;
                // Checked product: a corrupt dimension cannot wrap around to a small size.
                if (dim != 0 && count > long.MaxValue / dim)
                    throw new ModelFormatException(path, $"{Where()}: shape {Architectures.FormatShape(shape)} has more elements than fit in 64 bits");
                count *= dim;
            }

            if (offsetsEl.GetArrayLength() != 2)
                throw new ModelFormatException(path, $"{Where()}: data_offsets must be [begin, end], found {offsetsEl.GetArrayLength()} numbers");
            long begin = NonNegative(offsetsEl[0], "data_offsets[0]");
            long end = NonNegative(offsetsEl[1], "data_offsets[1]");
            if (end < begin)
                throw new ModelFormatException(path, $"{Where()}: data_offsets end {end} is before begin {begin}");
            if (end > dataLength)
                throw new ModelFormatException(path,
                    $"{Where()}: data_offsets [{begin}, {end}) run past the {dataLength}-byte data section (file truncated?)");

            long bytes = end - begin;
            if (SafetensorsFormat.DtypeSizes.TryGetValue(dtype, out int size))
            {
                if (count > long.MaxValue / size || count * size != bytes)
                    throw new ModelFormatException(path,
                        $"{Where()}: shape {Architectures.FormatShape(shape)} of {dtype} needs {(count > long.MaxValue / size ? "more than 2^63" : (count * size).ToString())} bytes, " +
                        $"but data_offsets span {bytes}");
            }
            var type = SafetensorsFormat.TypeOf(dtype);
            return (new TensorInfo(name, type, dtype, shape, bytes), begin, end);
        }

        /// <summary>Converts the tensor at <paramref name="offset"/> into <paramref name="dst"/> (whose length is the element count).</summary>
        public void Read(long offset, TensorType type, Span<float> dst)
        {
            if (dst.IsEmpty) return;
            var handle = (_view ?? throw new ObjectDisposedException(Path)).SafeMemoryMappedViewHandle;
            ulong at = (ulong)(offset + _view.PointerOffset);
            switch (type)
            {
                case TensorType.F32:
                    // In pieces: a span of more than 2^31 bytes cannot be viewed as bytes in one go.
                    for (int i = 0; i < dst.Length; i += F32ChunkElements)
                    {
                        int n = Math.Min(F32ChunkElements, dst.Length - i);
                        handle.ReadSpan(at + (ulong)i * 4, MemoryMarshal.AsBytes(dst.Slice(i, n)));
                    }
                    break;
                case TensorType.F16:
                case TensorType.BF16:
                {
                    ushort[] scratch = ArrayPool<ushort>.Shared.Rent(Math.Min(ChunkElements, dst.Length));
                    try
                    {
                        for (int i = 0; i < dst.Length; i += ChunkElements)
                        {
                            int n = Math.Min(ChunkElements, dst.Length - i);
                            var chunk = scratch.AsSpan(0, n);
                            handle.ReadSpan(at + (ulong)i * 2, MemoryMarshal.AsBytes(chunk)); // bytes: ReadSpan<T> copies element by element
                            if (type == TensorType.F16)
                                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(chunk), dst.Slice(i, n));
                            else
                                SafetensorsFormat.Bf16ToSingle(chunk, dst.Slice(i, n));
                        }
                    }
                    finally
                    {
                        ArrayPool<ushort>.Shared.Return(scratch);
                    }
                    break;
                }
                default:
                    throw new InvalidOperationException($"cannot convert {type}");
            }
        }

        public void Dispose()
        {
            _view?.Dispose();
            _map?.Dispose();
        }
    }
}
