using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using LongDep.Core.Records;

namespace LongDep.Core.Corpus.Mds;

/// <summary>
/// Reads an MDS dataset as corpus records: each sample becomes a JSON line of its columns (in the shard's column order),
/// so MDS samples flow through the same parser as JSON lines. <c>str</c> → string, scalars → numbers, <c>json</c> → the
/// JSON value, <c>ndarray</c> → (nested) arrays, <c>bytes</c> → text when valid UTF-8 else base64; images and pickles
/// are left out. A value that cannot be decoded (e.g. a <c>str</c> that is not UTF-8) makes that record a
/// <c>bad_record</c>; a damaged shard stops the read with a <see cref="CorpusFormatException"/>.
/// </summary>
public static class MdsRecords
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Streams the records of <paramref name="dataset"/> in index order.</summary>
    public static IEnumerable<RawRecord> Read(MdsDataset dataset, MdsProgress? progress = null)
    {
        var buffer = new ArrayBufferWriter<byte>(1 << 16);
        long index = 0;
        progress?.Start(dataset.SampleCount);
        foreach (MdsShard shard in dataset.ReadShards())
        {
            for (int i = 0; i < shard.Count; i++)
            {
                buffer.ResetWrittenCount();
                string? error = WriteJson(shard, i, buffer);
                yield return error is null
                    ? new RawRecord(index, buffer.WrittenSpan.ToArray())
                    : new RawRecord(index, ReadOnlyMemory<byte>.Empty, $"sample {i} of {shard.Info.FileName}: {error}");
                index++;
                progress?.Advance(1);
            }
        }
    }

    /// <summary>Writes sample <paramref name="i"/> of <paramref name="shard"/> as a JSON object; returns what could not be decoded, or null.</summary>
    public static string? WriteJson(MdsShard shard, int i, IBufferWriter<byte> output)
    {
        using var writer = new Utf8JsonWriter(output, WriterOptions);
        writer.WriteStartObject();
        IReadOnlyList<MdsColumn> columns = shard.Info.Columns;
        for (int c = 0; c < columns.Count; c++)
        {
            MdsColumn column = columns[c];
            if (column.Encoding.Kind == MdsColumnKind.Opaque) continue;
            writer.WritePropertyName(column.Name);
            if (WriteValue(writer, column.Encoding, shard.Column(i, c)) is { } error)
                return $"column '{column.Name}' ({column.Encoding}): {error}";
        }
        writer.WriteEndObject();
        return null;
    }

    private static string? WriteValue(Utf8JsonWriter w, MdsEncoding enc, ReadOnlySpan<byte> value)
    {
        switch (enc.Kind)
        {
            case MdsColumnKind.Str:
                if (!System.Text.Unicode.Utf8.IsValid(value)) return "the value is not valid UTF-8";
                w.WriteStringValue(value);
                return null;
            case MdsColumnKind.Bytes:
                if (System.Text.Unicode.Utf8.IsValid(value)) w.WriteStringValue(value);
                else w.WriteBase64StringValue(value);
                return null;
            case MdsColumnKind.Scalar:
                WriteElement(w, value, enc.DType!.Value, 0);
                return null;
            case MdsColumnKind.StrNumber:
            {
                if (!System.Text.Unicode.Utf8.IsValid(value)) return "the value is not valid UTF-8";
                string text = System.Text.Encoding.UTF8.GetString(value);
                if (decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal number)) w.WriteNumberValue(number);
                else w.WriteStringValue(text); // inf, nan, or beyond decimal's range: kept as written
                return null;
            }
            case MdsColumnKind.Json:
                try
                {
                    using JsonDocument doc = JsonDocument.Parse(value.ToArray(), new JsonDocumentOptions { MaxDepth = 256 });
                    doc.RootElement.WriteTo(w);
                    return null;
                }
                catch (JsonException e)
                {
                    return $"the value is not valid JSON ({e.Message})";
                }
            case MdsColumnKind.NdArray:
            {
                if (MdsValue.TryReadArray(value, enc, out MdsArray array) is { } bad) return bad;
                ReadOnlySpan<byte> elements = value.Slice(array.ElementsOffset, (int)array.ByteCount);
                long next = 0;
                WriteNested(w, elements, array.DType, array.Shape, 0, ref next);
                return null;
            }
            default:
                return "the value cannot be shown as JSON";
        }
    }

    private static void WriteNested(Utf8JsonWriter w, ReadOnlySpan<byte> elements, MdsDType dtype, long[] shape, int dim, ref long next)
    {
        w.WriteStartArray();
        for (long k = 0; k < shape[dim]; k++)
        {
            if (dim + 1 < shape.Length) WriteNested(w, elements, dtype, shape, dim + 1, ref next);
            else WriteElement(w, elements, dtype, next++);
        }
        w.WriteEndArray();
    }

    private static void WriteElement(Utf8JsonWriter w, ReadOnlySpan<byte> elements, MdsDType dtype, long index)
    {
        if (MdsEncoding.IsInteger(dtype))
        {
            var (signed, unsigned, isUnsigned) = MdsValue.IntegerElement(elements, dtype, index);
            if (isUnsigned) w.WriteNumberValue(unsigned);
            else w.WriteNumberValue(signed);
            return;
        }
        double d = MdsValue.ElementAsDouble(elements, dtype, index);
        if (double.IsFinite(d)) w.WriteNumberValue(d);
        else w.WriteNullValue();
    }
}

/// <summary>Samples read out of all, for progress: shared by a reader and a display thread.</summary>
public sealed class MdsProgress
{
    private long _total, _done;

    internal void Start(long total) => Volatile.Write(ref _total, total);
    internal void Advance(long samples) => Interlocked.Add(ref _done, samples);

    /// <summary>Fraction of the samples read, 0..1; null before reading starts or for an empty dataset.</summary>
    public double? Fraction
    {
        get
        {
            long total = Volatile.Read(ref _total);
            return total == 0 ? null : Math.Clamp((double)Interlocked.Read(ref _done) / total, 0, 1);
        }
    }
}
