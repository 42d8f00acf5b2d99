using NUnit.Framework;
using System.Text;

namespace LongDep.Models.Tests.Gguf;

/// <summary>
/// Builds GGUF bytes field by field (little-endian), independent of <c>GgufWriter</c>, so that tests can state
/// exactly what a file contains, including things a correct writer never produces.
/// </summary>
internal sealed class RawGguf
{
    private readonly MemoryStream _stream = new();
    private readonly BinaryWriter _w;

    public RawGguf() => _w = new BinaryWriter(_stream, Encoding.UTF8, leaveOpen: true);

    public long Position => _stream.Position;

    /// <summary>Magic, version, tensor count, metadata count.</summary>
    public static RawGguf Header(ulong tensors, ulong kvs, uint version = 3) =>
        new RawGguf().Bytes("GGUF"u8.ToArray()).U32(version).U64(tensors).U64(kvs);

    public RawGguf Bytes(byte[] b) { _w.Write(b); return this; }
    public RawGguf U8(byte v) { _w.Write(v); return this; }
    public RawGguf U32(uint v) { _w.Write(v); return this; }
    public RawGguf U64(ulong v) { _w.Write(v); return this; }
    public RawGguf F32(float v) { _w.Write(v); return this; }

    public RawGguf Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return U64((ulong)b.Length).Bytes(b);
    }

    /// <summary>A metadata entry with a UInt32 value.</summary>
    public RawGguf KvU32(string key, uint value) => Str(key).U32(4).U32(value);

    /// <summary>A tensor table entry; <paramref name="ne"/> is GGUF order (innermost first).</summary>
    public RawGguf Tensor(string name, ulong[] ne, uint type, ulong offset)
    {
        Str(name).U32((uint)ne.Length);
        foreach (var d in ne) U64(d);
        return U32(type).U64(offset);
    }

    /// <summary>Zero bytes up to the next multiple of <paramref name="alignment"/>.</summary>
    public RawGguf Pad(int alignment = 32)
    {
        while (_stream.Position % alignment != 0) _w.Write((byte)0);
        return this;
    }

    public RawGguf Zeros(int n) => Bytes(new byte[n]);

    public byte[] ToArray()
    {
        _w.Flush();
        return _stream.ToArray();
    }
}

/// <summary>A temporary folder per test fixture, removed afterwards.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path.GetDirectoryName(Combine("x"))!);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "longdep-gguf-tests-" + Guid.NewGuid().ToString("N"));

    public string Combine(string name) => Path.Combine(Root, name);

    public string WriteBytes(string name, byte[] bytes)
    {
        var path = Combine(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Little helpers to encode halves in tests (bit patterns are written by hand where they matter).</summary>
internal static class Bits
{
    public static ushort Half(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    public static void PutU16(byte[] b, int at, ushort v)
    {
        b[at] = (byte)v;
        b[at + 1] = (byte)(v >> 8);
    }
}
