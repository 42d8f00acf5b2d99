using System.Buffers;
using System.Collections;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using LongDep.Core.Records;
using Parquet;
using Parquet.Serialization;

namespace LongDep.Core.Corpus;

/// <summary>
/// Reads a Parquet corpus one row group at a time and turns each row into a JSON line (columns in schema order,
/// nested structs as objects, lists as arrays), so Parquet records flow through the same parser as JSON lines.
/// The meta column, when it holds a JSON object written as a string (common in Hugging Face exports), is
/// written as that object.
/// </summary>
internal static class ParquetRecords
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = false,
    };

    public static IEnumerable<RawRecord> Read(string path, RecordFieldOptions fields)
    {
        string metaColumn = fields.MetaField.Split('.')[0];
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        int rowGroups;
        try
        {
            ParquetReader reader = ParquetReader.CreateAsync(file, null, leaveStreamOpen: true).GetAwaiter().GetResult();
            rowGroups = reader.RowGroupCount;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException)
        {
            throw new CorpusFormatException($"{Path.GetFileName(path)} is not a readable Parquet file: {e.Message}", e);
        }

        long index = 0;
        var buffer = new ArrayBufferWriter<byte>(1 << 16);
        for (int group = 0; group < rowGroups; group++)
        {
            DeserializationResult<Dictionary<string, object>> rows;
            try
            {
                file.Position = 0;
                rows = ParquetSerializer.DeserializeUntypedAsync(file, null, group).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
            {
                throw new CorpusFormatException(
                    $"{Path.GetFileName(path)}: row group {group} cannot be read after {index} records: {e.Message}", e);
            }

            string[] columns = rows.Schema.Fields.Select(f => f.Name).ToArray();
            foreach (Dictionary<string, object> row in rows.Data)
            {
                buffer.ResetWrittenCount();
                using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
                {
                    writer.WriteStartObject();
                    foreach (string column in columns)
                    {
                        writer.WritePropertyName(column);
                        row.TryGetValue(column, out object? value);
                        if (column == metaColumn && AsText(value) is { } metaText && IsJsonObject(metaText))
                            writer.WriteRawValue(metaText, skipInputValidation: true);
                        else
                            WriteValue(writer, value);
                    }
                    writer.WriteEndObject();
                }
                yield return new RawRecord(index++, buffer.WrittenSpan.ToArray());
            }
        }
    }

    private static string? AsText(object? value) => value switch
    {
        string s => s,
        ReadOnlyMemory<char> m => m.ToString(),
        _ => null,
    };

    private static bool IsJsonObject(string text)
    {
        if (!text.AsSpan().TrimStart().StartsWith("{")) return false;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case ReadOnlyMemory<char> m: writer.WriteStringValue(m.Span); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case sbyte or byte or short or ushort or int or long:
                writer.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
            case uint or ulong:
                writer.WriteNumberValue(Convert.ToUInt64(value, CultureInfo.InvariantCulture)); break;
            case float f: WriteDouble(writer, f); break;
            case double d: WriteDouble(writer, d); break;
            case Half h: WriteDouble(writer, (double)h); break;
            case decimal m: writer.WriteNumberValue(m); break;
            case DateTime t: writer.WriteStringValue(t.ToString("O", CultureInfo.InvariantCulture)); break;
            case DateTimeOffset t: writer.WriteStringValue(t.ToString("O", CultureInfo.InvariantCulture)); break;
            case DateOnly t: writer.WriteStringValue(t.ToString("O", CultureInfo.InvariantCulture)); break;
            case TimeOnly t: writer.WriteStringValue(t.ToString("O", CultureInfo.InvariantCulture)); break;
            case TimeSpan t: writer.WriteStringValue(t.ToString("c", CultureInfo.InvariantCulture)); break;
            case Guid g: writer.WriteStringValue(g.ToString()); break;
            case byte[] bytes: WriteBytes(writer, bytes); break;
            case ReadOnlyMemory<byte> bytes: WriteBytes(writer, bytes.Span); break;
            case IEnumerable<KeyValuePair<string, object>> map:
                writer.WriteStartObject();
                foreach (KeyValuePair<string, object> kv in map)
                {
                    writer.WritePropertyName(kv.Key);
                    WriteValue(writer, kv.Value);
                }
                writer.WriteEndObject();
                break;
            case IDictionary dictionary:
                writer.WriteStartObject();
                foreach (DictionaryEntry kv in dictionary)
                {
                    writer.WritePropertyName(Convert.ToString(kv.Key, CultureInfo.InvariantCulture) ?? "");
                    WriteValue(writer, kv.Value);
                }
                writer.WriteEndObject();
                break;
            case IEnumerable items:
                writer.WriteStartArray();
                foreach (object? item in items) WriteValue(writer, item);
                writer.WriteEndArray();
                break;
            default:
                writer.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    private static void WriteDouble(Utf8JsonWriter writer, double d)
    {
        if (double.IsFinite(d)) writer.WriteNumberValue(d);
        else writer.WriteNullValue();
    }

    /// <summary>Binary columns: text when they hold valid UTF-8 (un-annotated string columns), else base64.</summary>
    private static void WriteBytes(Utf8JsonWriter writer, ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) writer.WriteStringValue(bytes);
        else writer.WriteBase64StringValue(bytes);
    }
}
