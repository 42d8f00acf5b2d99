using System.Buffers;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;

namespace LongDep.Models.HuggingFace;

/// <summary>
/// The tensors of a Hugging Face PyTorch checkpoint folder: <c>pytorch_model.bin</c>, or
/// <c>pytorch_model.bin.index.json</c> and the shards it names. Each file is the zip archive <c>torch.save</c> writes
/// (<c>{top}/data.pkl</c>, <c>{top}/data/{key}</c> storages, <c>{top}/version</c>, <c>{top}/byteorder</c>); its
/// pickle is read by <see cref="TorchPickle"/>, which runs no code. Every storage record is checked at open (present,
/// uncompressed, exactly the size the pickle says) and every tensor view against its storage, so reads never leave
/// the file. F32, F16 and BF16 storages read as float32; other storage types are listed as <see cref="TensorType.Other"/>.
/// <see cref="ReadF32"/> may be called from several threads at once (reads of one file take turns).
/// </summary>
public sealed class PyTorchCheckpoint : ITensorSource
{
    /// <summary>File names Hugging Face uses for a single-file and a sharded PyTorch checkpoint.</summary>
    public const string SingleFile = "pytorch_model.bin";
    public const string IndexFile = "pytorch_model.bin.index.json";

    private readonly List<TorchArchive> _files;
    private readonly Dictionary<string, (TorchArchive File, TorchTensor Tensor)> _entries;
    private readonly Dictionary<string, TensorInfo> _infos;

    private PyTorchCheckpoint(string sourcePath, List<TorchArchive> files, Dictionary<string, (TorchArchive, TorchTensor)> entries)
    {
        SourcePath = sourcePath;
        _files = files;
        _entries = entries;
        _infos = entries.ToDictionary(kv => kv.Key, kv => Info(kv.Key, kv.Value.Item2), StringComparer.Ordinal);
    }

    /// <inheritdoc/>
    public string SourcePath { get; }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _infos;

    /// <summary>Whether the folder holds a single-file or a sharded PyTorch checkpoint.</summary>
    public static bool Exists(string folder) =>
        File.Exists(Path.Combine(folder, SingleFile)) || File.Exists(Path.Combine(folder, IndexFile));

    /// <summary>
    /// Opens the checkpoint in <paramref name="folder"/>: <c>pytorch_model.bin</c> when present (as transformers
    /// prefers it), else <c>pytorch_model.bin.index.json</c> and its shards.
    /// </summary>
    /// <exception cref="ModelFormatException">The folder, a file, a pickle or a record is missing or malformed.</exception>
    public static PyTorchCheckpoint Open(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
            throw new ModelFormatException(folder, "folder not found (expected a Hugging Face checkpoint folder with config.json and pytorch_model.bin)");
        string single = Path.Combine(folder, SingleFile);
        string index = Path.Combine(folder, IndexFile);
        if (File.Exists(single)) return OpenSingle(folder, single);
        if (File.Exists(index)) return OpenSharded(folder, index);
        throw new ModelFormatException(folder, $"no PyTorch weights: looked for {SingleFile} and {IndexFile}");
    }

    /// <summary>Opens one file written by <c>torch.save(state_dict, path)</c>.</summary>
    public static PyTorchCheckpoint OpenFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return OpenSingle(path, path);
    }

    private static PyTorchCheckpoint OpenSingle(string source, string path)
    {
        var file = TorchArchive.Open(path);
        try
        {
            var entries = new Dictionary<string, (TorchArchive, TorchTensor)>(StringComparer.Ordinal);
            foreach (var (name, tensor) in file.Tensors) entries.Add(name, (file, tensor));
            return new PyTorchCheckpoint(source, [file], entries);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static PyTorchCheckpoint OpenSharded(string folder, string indexPath)
    {
        var (files, entries) = SafetensorsFormat.OpenShards(indexPath, "PyTorch checkpoint index", "state dict", TorchArchive.Open,
            f => f.Tensors, f => f.Path);
        return new PyTorchCheckpoint(folder, files, entries);
    }

    private static TensorInfo Info(string name, TorchTensor t)
    {
        var type = t.Storage.Type;
        return new TensorInfo(name, type.Type, type.DtypeName, (long[])t.Shape.Clone(), t.ElementCount * type.ElementSize);
    }

    /// <inheritdoc/>
    public float[] ReadF32(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_entries.TryGetValue(name, out var found))
            throw new ModelFormatException(SourcePath, $"no tensor named '{name}' in the checkpoint");
        var (file, tensor) = found;
        var type = tensor.Storage.Type;
        if (type.Type == TensorType.Other)
            throw new ModelFormatException(file.Path,
                $"tensor '{name}' is stored as torch.{type.ClassName} ({type.DtypeName}); only float32, float16 and bfloat16 can be read " +
                "(convert it, e.g. state_dict[name] = state_dict[name].float(), and save again)");
        long count = tensor.ElementCount;
        if (count > Array.MaxLength)
            throw new ModelFormatException(file.Path, $"tensor '{name}' has {count} elements, more than one array can hold");
        var result = new float[count];
        file.Read(name, tensor, result);
        return result;
    }

    /// <summary>Closes every file.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}

/// <summary>One <c>torch.save</c> zip archive: its checked state dict and the storage records it points at.</summary>
internal sealed class TorchArchive : IDisposable
{
    /// <summary>Largest small text record (version, byteorder) we read.</summary>
    private const int MaxSmallRecord = 64;
    private const int MaxEntries = 1 << 20;
    private const int ChunkElements = 1 << 16;

    private readonly object _gate = new();
    private readonly FileStream _stream;
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _storages;

    private TorchArchive(string path, FileStream stream, ZipArchive zip, string prefix,
        IReadOnlyList<(string, TorchTensor)> tensors, Dictionary<string, ZipArchiveEntry> storages)
    {
        Path = path;
        _stream = stream;
        _zip = zip;
        Prefix = prefix;
        Tensors = tensors;
        _storages = storages;
    }

    public string Path { get; }

    /// <summary>The top folder of the archive's records (torch uses the file's stem, or <c>archive</c>).</summary>
    public string Prefix { get; }

    public IReadOnlyList<(string Name, TorchTensor Tensor)> Tensors { get; }

    public static TorchArchive Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("PyTorch checkpoint reading assumes a little-endian machine");
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"cannot open: {e.Message}", e);
        }

        ZipArchive? zip = null;
        try
        {
            CheckMagic(fs, path);
            try
            {
                zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
            }
            catch (InvalidDataException e)
            {
                throw new ModelFormatException(path, $"not a readable zip archive ({e.Message}); the file is corrupt or truncated", e);
            }
            var result = ReadArchive(path, fs, zip);
            return result;
        }
        catch (Exception e)
        {
            zip?.Dispose();
            fs.Dispose();
            if (e is IOException or InvalidDataException or UnauthorizedAccessException)
                throw new ModelFormatException(path, $"cannot read the archive: {e.Message}", e);
            throw;
        }
    }

    /// <summary>Tells a zip archive from the legacy (pre-1.6) torch format and from other files, by the first bytes.</summary>
    private static void CheckMagic(FileStream fs, string path)
    {
        Span<byte> head = stackalloc byte[512];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        fs.Position = 0;
        var h = head[..n];
        if (h.Length >= 4 && h[0] == (byte)'P' && h[1] == (byte)'K' && ((h[2] == 3 && h[3] == 4) || (h[2] == 5 && h[3] == 6))) return;
        const string convert = "load it with torch and save it again with a torch of version 1.6 or later (torch.save(torch.load(path), path)), or convert it to safetensors";
        // torch.save before 1.6 (or with _use_new_zipfile_serialization=False) writes bare pickles: the magic number first.
        if (h.Length > 0 && h[0] == 0x80)
            throw new ModelFormatException(path, $"a PyTorch file in the legacy (pre-1.6) format, which this reader does not read; {convert}");
        if (h.Length >= 262 && h.Slice(257, 5).SequenceEqual("ustar"u8))
            throw new ModelFormatException(path, $"a PyTorch file in the old tar format, which this reader does not read; {convert}");
        if (h.Length == 0) throw new ModelFormatException(path, "the file is empty; expected a PyTorch checkpoint (a zip archive written by torch.save)");
        throw new ModelFormatException(path,
            $"not a PyTorch checkpoint: expected a zip archive written by torch.save, found bytes {Convert.ToHexString(h[..Math.Min(4, h.Length)])}");
    }

    private static TorchArchive ReadArchive(string path, FileStream fs, ZipArchive zip)
    {
        var entries = zip.Entries;
        if (entries.Count > MaxEntries)
            throw new ModelFormatException(path, $"the archive has {entries.Count} records; more than the {MaxEntries} this reader accepts");

        // The pickle is <top>/data.pkl; <top> is whatever folder torch chose (the file's stem, "archive", ...).
        var pickles = entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count == 0)
        {
            if (entries.Any(e => e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal)))
                throw new ModelFormatException(path, "a TorchScript archive (torch.jit.save), not a state dict; save the model's state_dict with torch.save instead");
            throw new ModelFormatException(path, "the zip archive has no <folder>/data.pkl record: not a checkpoint written by torch.save");
        }
        if (pickles.Count > 1)
            throw new ModelFormatException(path, $"the zip archive has {pickles.Count} data.pkl records ({pickles[0].FullName}, {pickles[1].FullName}); expected one");
        string prefix = pickles[0].FullName[..^"/data.pkl".Length];
        var byName = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (!byName.TryAdd(e.FullName, e))
                throw new ModelFormatException(path, $"the zip archive has two records named '{e.FullName}'");
        }

        if (byName.TryGetValue(prefix + "/byteorder", out var order))
        {
            string text = SmallText(path, fs, order);
            if (text != "little")
                throw new ModelFormatException(path, $"byteorder record says '{text}'; only little-endian checkpoints are read (load and save it again on a little-endian machine)");
        }
        foreach (string name in new[] { prefix + "/version", prefix + "/.data/version" })
        {
            if (!byName.TryGetValue(name, out var v)) continue;
            string text = SmallText(path, fs, v);
            if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int version) || version < 1 || version > 1000)
                throw new ModelFormatException(path, $"record {name} holds '{Printable(text)}', expected the archive's format version (a small positive integer)");
        }

        var pickle = ReadEntry(path, fs, pickles[0], TorchPickle.MaxPickleBytes);
        var tensors = TorchPickle.ReadStateDict(pickle, path);

        // Every storage the tensors use is a record of exactly the size the pickle gives.
        var storages = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            var s = t.Storage;
            if (storages.ContainsKey(s.Key)) continue;
            string record = prefix + "/data/" + s.Key;
            if (!byName.TryGetValue(record, out var entry))
                throw new ModelFormatException(path, $"tensor '{name}' uses storage '{s.Key}', but the archive has no record {record}");
            CheckStored(path, fs, entry);
            if (entry.Length != s.ByteSize)
                throw new ModelFormatException(path,
                    $"record {record} is {entry.Length} bytes, but the state dict says storage '{s.Key}' holds {s.Numel} × {s.Type.ElementSize}-byte elements ({s.ByteSize} bytes)");
            storages.Add(s.Key, entry);
        }
        return new TorchArchive(path, fs, zip, prefix, tensors, storages);
    }

    /// <summary>
    /// torch.save writes its records uncompressed; requiring that here also bounds every allocation by the file's size.
    /// </summary>
    private static void CheckStored(string path, FileStream fs, ZipArchiveEntry entry)
    {
        if (entry.CompressedLength != entry.Length)
            throw new ModelFormatException(path,
                $"record {entry.FullName} is compressed ({entry.CompressedLength} bytes for {entry.Length}); torch.save writes uncompressed records " +
                "(re-save it with torch.save, or re-zip it without compression)");
        if (entry.Length > fs.Length)
            throw new ModelFormatException(path, $"record {entry.FullName} claims {entry.Length} bytes, more than the {fs.Length}-byte file");
    }

    private static byte[] ReadEntry(string path, FileStream fs, ZipArchiveEntry entry, long cap)
    {
        if (entry.Length > cap)
            throw new ModelFormatException(path, $"record {entry.FullName} is {entry.Length} bytes, more than the {cap}-byte limit");
        CheckStored(path, fs, entry);
        var bytes = new byte[entry.Length];
        try
        {
            using var s = entry.Open();
            s.ReadExactly(bytes);
        }
        catch (EndOfStreamException e)
        {
            throw new ModelFormatException(path, $"record {entry.FullName} ends before its {entry.Length} bytes (truncated?)", e);
        }
        return bytes;
    }

    private static string SmallText(string path, FileStream fs, ZipArchiveEntry entry)
    {
        var bytes = ReadEntry(path, fs, entry, MaxSmallRecord);
        return Encoding.UTF8.GetString(bytes).Trim();
    }

    private static string Printable(string s) => new(s.Select(ch => char.IsControl(ch) ? '?' : ch).ToArray());

    /// <summary>Reads <paramref name="tensor"/> (<paramref name="name"/>) into <paramref name="dst"/>, converting to float32.</summary>
    public void Read(string name, TorchTensor tensor, Span<float> dst)
    {
        if (dst.IsEmpty) return;
        var entry = _storages[tensor.Storage.Key];
        lock (_gate)
        {
            try
            {
                using var s = entry.Open();
                if (tensor.IsContiguous)
                {
                    ReadElements(s, tensor.Storage.Type, tensor.Offset, dst);
                    return;
                }

                // A strided view: read the storage span it covers, then pick its elements.
                long last = tensor.Offset;
                for (int d = 0; d < tensor.Shape.Length; d++) last += (tensor.Shape[d] - 1) * tensor.Stride[d];
                long span = last - tensor.Offset + 1;
                if (span > Array.MaxLength)
                    throw new ModelFormatException(Path, $"tensor '{name}' is a strided view over {span} elements, more than one array can hold");
                var covered = new float[span];
                ReadElements(s, tensor.Storage.Type, tensor.Offset, covered);
                Gather(covered, tensor.Shape, tensor.Stride, dst);
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                throw new ModelFormatException(Path, $"cannot read tensor '{name}' from record {entry.FullName}: {e.Message}", e);
            }
        }
    }

    /// <summary>Reads <c>dst.Length</c> elements starting at element <paramref name="first"/> of the storage stream.</summary>
    private static void ReadElements(Stream s, TorchStorageType type, long first, Span<float> dst)
    {
        long skip = first * type.ElementSize;
        if (s.CanSeek)
        {
            s.Seek(skip, SeekOrigin.Begin);
        }
        else
        {
            var discard = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                while (skip > 0)
                {
                    int n = (int)Math.Min(skip, discard.Length);
                    s.ReadExactly(discard, 0, n);
                    skip -= n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(discard);
            }
        }

        switch (type.Type)
        {
            case TensorType.F32:
                for (int i = 0; i < dst.Length; i += ChunkElements)
                {
                    int n = Math.Min(ChunkElements, dst.Length - i);
                    s.ReadExactly(MemoryMarshal.AsBytes(dst.Slice(i, n)));
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
                        s.ReadExactly(MemoryMarshal.AsBytes(chunk));
                        if (type.Type == TensorType.F16)
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
                throw new InvalidOperationException($"cannot convert {type.ClassName}");
        }
    }

    /// <summary>Copies the view (<paramref name="shape"/>, <paramref name="stride"/>) of <paramref name="src"/> (starting at its element 0) row-major into <paramref name="dst"/>.</summary>
    internal static void Gather(ReadOnlySpan<float> src, long[] shape, long[] stride, Span<float> dst)
    {
        int dims = shape.Length;
        var index = new long[dims];
        long at = 0;
        for (int k = 0; k < dst.Length; k++)
        {
            dst[k] = src[(int)at];
            for (int d = dims - 1; d >= 0; d--)
            {
                if (++index[d] < shape[d])
                {
                    at += stride[d];
                    break;
                }
                at -= (shape[d] - 1) * stride[d];
                index[d] = 0;
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _zip.Dispose();
            _stream.Dispose();
        }
    }
}
