using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LongDep.Models.Gguf;
using Microsoft.Win32.SafeHandles;

namespace LongDep.Models;

/// <summary>
/// A model's identity for score files: SHA-256 over what makes two models differ, read in well under a second even
/// from a 15 GB file (a few megabytes at most).
/// <list type="bullet">
/// <item>GGUF: the whole header (metadata, tokenizer, tensor table), the file size, and three 4 KiB blocks of each
/// tensor's data (its first, middle and last).</item>
/// <item>Hugging Face folder: <c>config.json</c>, the tokenizer files and the safetensors index whole; of each
/// <c>*.safetensors</c> file its header (the tensor table), its size and three 4 KiB blocks of each tensor; of other
/// weight files (<c>*.bin</c>) the size and 64 blocks spread over the file.</item>
/// </list>
/// Two files that differ only inside tensors, away from the sampled blocks, get the same identity.
/// </summary>
public static class ModelFingerprint
{
    /// <summary>Bytes of each sampled block.</summary>
    public const int BlockBytes = 4096;

    private static readonly string[] WholeFiles =
        ["config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
         "merges.txt", "added_tokens.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"];

    /// <summary>The identity of the model at <paramref name="path"/> (a .gguf file or a checkpoint folder): 32 hex digits.</summary>
    /// <exception cref="ModelFormatException">The path is not a readable model.</exception>
    public static string Compute(string path)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            if (File.Exists(path)) Gguf(path, sha);
            else if (Directory.Exists(path)) Folder(path, sha);
            else throw new ModelFormatException(path, "no such file or folder; --model takes a .gguf file or a Hugging Face checkpoint folder");
        }
        catch (IOException e)
        {
            throw new ModelFormatException(path, $"cannot read it: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ModelFormatException(path, $"cannot read it: {e.Message}", e);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..32];
    }

    private static void Gguf(string path, IncrementalHash sha)
    {
        using var gguf = GgufFile.Open(path);
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        long length = RandomAccess.GetLength(handle);
        AddNumber(sha, length);
        Add(sha, handle, 0, gguf.DataStart);
        foreach (TensorInfo t in gguf.TensorList)
            AddTensor(sha, handle, t.Name, gguf.DataOffset(t.Name), t.ByteSize);
    }

    private static void Folder(string folder, IncrementalHash sha)
    {
        foreach (string name in WholeFiles)
        {
            string file = Path.Combine(folder, name);
            if (!File.Exists(file)) continue;
            sha.AppendData(Encoding.UTF8.GetBytes(name));
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            AddNumber(sha, stream.Length);
            var buffer = new byte[1 << 16];
            int n;
            while ((n = stream.Read(buffer)) > 0) sha.AppendData(buffer, 0, n);
        }
        foreach (string file in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(file);
            bool safetensors = name.EndsWith(".safetensors", StringComparison.Ordinal);
            if (!safetensors && !name.EndsWith(".bin", StringComparison.Ordinal) && !name.EndsWith(".pt", StringComparison.Ordinal)) continue;
            sha.AppendData(Encoding.UTF8.GetBytes(name));
            using SafeFileHandle handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
            long length = RandomAccess.GetLength(handle);
            AddNumber(sha, length);
            if (safetensors && Safetensors(sha, handle, length)) continue;
            for (int k = 0; k < 64; k++) Add(sha, handle, length / 64 * k, BlockBytes);
            Add(sha, handle, Math.Max(0, length - BlockBytes), BlockBytes);
        }
    }

    /// <summary>Hashes a safetensors header and samples of each tensor; false when the header does not parse (sampled as a plain file then).</summary>
    private static bool Safetensors(IncrementalHash sha, SafeFileHandle handle, long length)
    {
        if (length < 8) return false;
        Span<byte> n = stackalloc byte[8];
        RandomAccess.Read(handle, n, 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(n);
        if (headerLength > 100_000_000 || 8 + (long)headerLength > length) return false;
        var header = new byte[headerLength];
        RandomAccess.Read(handle, header, 8);
        sha.AppendData(header);
        try
        {
            using var doc = JsonDocument.Parse(header);
            long dataStart = 8 + (long)headerLength;
            foreach (JsonProperty p in doc.RootElement.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                if (p.Name == "__metadata__" || !p.Value.TryGetProperty("data_offsets", out JsonElement offsets)) continue;
                long begin = offsets[0].GetInt64(), end = offsets[1].GetInt64();
                AddTensor(sha, handle, p.Name, dataStart + begin, end - begin);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            return false;
        }
        return true;
    }

    private static void AddTensor(IncrementalHash sha, SafeFileHandle handle, string name, long offset, long size)
    {
        sha.AppendData(Encoding.UTF8.GetBytes(name));
        AddNumber(sha, offset);
        AddNumber(sha, size);
        if (size <= 0) return;
        Add(sha, handle, offset, Math.Min(size, BlockBytes));
        if (size > BlockBytes)
        {
            Add(sha, handle, offset + size / 2 - Math.Min(size / 2, BlockBytes / 2), BlockBytes);
            Add(sha, handle, offset + size - BlockBytes, BlockBytes);
        }
    }

    private static void Add(IncrementalHash sha, SafeFileHandle handle, long offset, long count)
    {
        var buffer = new byte[Math.Min(count, 1 << 20)];
        while (count > 0)
        {
            int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, count)), offset);
            if (n <= 0) break;
            sha.AppendData(buffer, 0, n);
            offset += n;
            count -= n;
        }
    }

    private static void AddNumber(IncrementalHash sha, long value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        sha.AppendData(b);
    }
}
