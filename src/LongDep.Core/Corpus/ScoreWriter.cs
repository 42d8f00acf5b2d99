using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using LongDep.Core.Records;

namespace LongDep.Core.Corpus;

/// <summary>
/// Writes score records as JSON lines, in the field order of SPEC §1. Doubles are written in their shortest
/// round-trip form, so a rerun with the same numbers is byte-identical. Lines reach the file every
/// <c>flushEvery</c> records (and on <see cref="Flush"/> / dispose), so an interrupted run loses little.
/// Not thread-safe: write from one thread, in input order.
/// </summary>
public sealed class ScoreWriter : IDisposable
{
    /// <summary>Default number of records between flushes.</summary>
    public const int DefaultFlushEvery = 16;

    private static readonly JsonWriterOptions Options = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly int _flushEvery;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private int _sinceFlush;
    private bool _disposed;

    /// <summary>Opens <paramref name="path"/> for writing; appends when <paramref name="append"/> (resume), else replaces it.</summary>
    public ScoreWriter(string path, bool append = false, int flushEvery = DefaultFlushEvery)
        : this(new FileStream(path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16), false, flushEvery)
    {
    }

    /// <summary>Writes to <paramref name="stream"/>.</summary>
    public ScoreWriter(Stream stream, bool leaveOpen = false, int flushEvery = DefaultFlushEvery)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(flushEvery, 1);
        _stream = stream;
        _leaveOpen = leaveOpen;
        _flushEvery = flushEvery;
    }

    /// <summary>Records written so far by this writer.</summary>
    public long Written { get; private set; }

    /// <summary>Writes the settings header line (the first line of a new score file) and pushes it to the file.</summary>
    public void WriteHeader(ScoreHeader header)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(header);
        _stream.Write(header.Format());
        _stream.WriteByte((byte)'\n');
        Flush();
    }

    /// <summary>Writes one record as one line.</summary>
    /// <exception cref="ArgumentException">An ok record whose score is missing or not finite (report it as numeric_error).</exception>
    public void Write(ScoreRecord record)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _buffer.ResetWrittenCount();
        Format(record, _buffer);
        _buffer.Write("\n"u8);
        _stream.Write(_buffer.WrittenSpan);
        Written++;
        if (++_sinceFlush >= _flushEvery) Flush();
    }

    /// <summary>Pushes written lines to the file.</summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _stream.Flush();
        _sinceFlush = 0;
    }

    /// <summary>The JSON line of <paramref name="record"/>, without the line terminator.</summary>
    public static byte[] Format(ScoreRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        Format(record, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static void Format(ScoreRecord record, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(record);
        bool ok = record.Status == ScoreStatus.Ok;
        if (ok && (record.Score is not { } s || !double.IsFinite(s)))
            throw new ArgumentException($"record {record.Index} has status ok but score {record.Score?.ToString("R", CultureInfo.InvariantCulture) ?? "null"}; report it as numeric_error.", nameof(record));

        using var w = new Utf8JsonWriter(output, Options);
        w.WriteStartObject();
        w.WriteNumber("index", record.Index);
        WriteStringOrNull(w, "id", record.Id);
        w.WriteString("method", record.Method);
        w.WriteString("status", record.Status.ToJsonName());
        w.WritePropertyName("score");
        if (ok) WriteDouble(w, record.Score!.Value); else w.WriteNullValue();
        w.WritePropertyName("tokens");
        if (record.Tokens is { } tokens) w.WriteNumberValue(tokens); else w.WriteNullValue();
        WriteStringOrNull(w, "domain", record.Domain);
        if (record.Layers is { } layers)
        {
            w.WriteStartArray("layers");
            foreach (double v in layers) WriteDouble(w, v);
            w.WriteEndArray();
        }
        if (record.PairsUsed is { } pairs) w.WriteNumber("pairs_used", pairs);
        if (record.Chunks is { } chunks) w.WriteNumber("chunks", chunks);
        if (!ok && record.Error is { } error) w.WriteString("error", error);
        if (record.InputHash is { } hash) w.WriteString("input_hash", hash.ToString("x16", CultureInfo.InvariantCulture));
        if (record.Meta is { } meta && meta.ValueKind != JsonValueKind.Undefined)
        {
            w.WritePropertyName("meta");
            w.WriteRawValue(meta.GetRawText(), skipInputValidation: true);
        }
        w.WriteEndObject();
    }

    /// <summary>Shortest round-trip form; NaN and infinities (not JSON numbers) as null.</summary>
    private static void WriteDouble(Utf8JsonWriter w, double v)
    {
        if (double.IsFinite(v)) w.WriteRawValue(v.ToString("R", CultureInfo.InvariantCulture), skipInputValidation: true);
        else w.WriteNullValue();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteString(name, value);
    }

    /// <summary>Flushes, then closes the file (unless the stream was to be left open).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _stream.Flush();
        _disposed = true;
        if (!_leaveOpen) _stream.Dispose();
    }
}
