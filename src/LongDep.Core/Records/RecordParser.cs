using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace LongDep.Core.Records;

/// <summary>
/// Turns <see cref="RawRecord"/>s into <see cref="InputRecord"/>s. Immutable and thread-safe: parse on any thread.
/// Every problem with a record becomes its <see cref="InputRecord.Error"/>; nothing here throws for bad data.
/// </summary>
public sealed class RecordParser
{
    private static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = 256 };

    private readonly RecordFieldOptions _fields;
    private readonly string[] _text, _ids, _id, _meta, _domain;

    /// <summary>Creates a parser for the given field paths (validated here).</summary>
    public RecordParser(RecordFieldOptions? fields = null)
    {
        _fields = fields ?? RecordFieldOptions.Default;
        _text = RecordFieldOptions.SplitPath(_fields.TextField, "--text-field");
        _ids = RecordFieldOptions.SplitPath(_fields.IdsField, "--ids-field");
        _id = RecordFieldOptions.SplitPath(_fields.IdField, "id field");
        _meta = RecordFieldOptions.SplitPath(_fields.MetaField, "meta field");
        _domain = RecordFieldOptions.SplitPath(_fields.DomainField, "--domain-field");
    }

    /// <summary>Parses one raw record.</summary>
    public InputRecord Parse(RawRecord raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ReadOnlySpan<byte> line = raw.Line.Span;
        ulong hash = Fnv1a64.Hash(line);
        if (raw.Error is not null) return Bad(raw, hash, raw.Error);

        if (!Utf8.IsValid(line))
            return Bad(raw, hash, $"the line is not valid UTF-8 (first invalid byte at offset {FirstInvalidUtf8(line)}); re-encode the corpus as UTF-8");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(raw.Line, JsonOptions);
        }
        catch (JsonException e)
        {
            return Bad(raw, hash, $"the line is not valid JSON: {e.Message}");
        }

        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return Bad(raw, hash, $"expected a JSON object per line, found {Describe(root.ValueKind)}");
            try
            {
                return ParseObject(raw, hash, root);
            }
            catch (InvalidOperationException e)
            {
                // GetString on a string holding an escaped lone surrogate, e.g. "\ud800".
                return Bad(raw, hash, $"a string field cannot be read: {e.Message}");
            }
        }
    }

    private InputRecord ParseObject(RawRecord raw, ulong hash, JsonElement root)
    {
        string? id = null;
        if (TryResolve(root, _id, out JsonElement idValue) && idValue.ValueKind != JsonValueKind.Null)
            id = idValue.ValueKind == JsonValueKind.String ? idValue.GetString() : idValue.GetRawText();

        JsonElement? meta = null;
        if (TryResolve(root, _meta, out JsonElement metaValue) && metaValue.ValueKind != JsonValueKind.Null)
            meta = metaValue.Clone();

        string? domain = ResolveDomain(root);

        int[]? ids = null;
        if (TryResolve(root, _ids, out JsonElement idsValue) && idsValue.ValueKind != JsonValueKind.Null)
        {
            string? idsError = ReadIds(idsValue, out ids);
            if (idsError is not null) return Bad(raw, hash, idsError, id, meta, domain);
        }

        string? text = null;
        if (TryResolve(root, _text, out JsonElement textValue) && textValue.ValueKind != JsonValueKind.Null)
        {
            if (textValue.ValueKind != JsonValueKind.String)
            {
                if (ids is null)
                    return Bad(raw, hash, $"field '{_fields.TextField}' is {Describe(textValue.ValueKind)}, expected a string", id, meta, domain);
            }
            else
            {
                text = textValue.GetString();
            }
        }

        if (text is null && ids is null)
            return Bad(raw, hash,
                $"the record has neither '{_fields.TextField}' (a string) nor '{_fields.IdsField}' (an array of token ids); name other fields with --text-field / --ids-field",
                id, meta, domain);

        return new InputRecord
        {
            Index = raw.Index, Id = id, Text = text, InputIds = ids, Meta = meta, Domain = domain, Hash = hash,
        };
    }

    private string? ReadIds(JsonElement value, out int[]? ids)
    {
        ids = null;
        if (value.ValueKind != JsonValueKind.Array)
            return $"field '{_fields.IdsField}' is {Describe(value.ValueKind)}, expected an array of integer token ids";

        var result = new int[value.GetArrayLength()];
        int k = 0;
        foreach (JsonElement item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v))
                return $"{_fields.IdsField}[{k}] is {Truncate(item.GetRawText())}, expected an integer token id";
            if (v < 0)
                return $"{_fields.IdsField}[{k}] is {v}: token ids must be non-negative";
            if (v > int.MaxValue)
                return $"{_fields.IdsField}[{k}] is {v}, larger than any token id ({int.MaxValue})";
            result[k++] = (int)v;
        }
        ids = result;
        return null;
    }

    /// <summary>Follows the domain path; a segment holding a JSON object written as a string (HF exports of meta) is descended into.</summary>
    private string? ResolveDomain(JsonElement root)
    {
        JsonElement current = root;
        JsonDocument? inner = null;
        try
        {
            foreach (string segment in _domain)
            {
                if (current.ValueKind == JsonValueKind.String && LooksLikeObject(current.GetString()))
                {
                    try
                    {
                        var parsed = JsonDocument.Parse(current.GetString()!, JsonOptions);
                        inner?.Dispose();
                        inner = parsed;
                        current = parsed.RootElement;
                    }
                    catch (JsonException)
                    {
                        return null;
                    }
                }
                if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(segment, out JsonElement next))
                    return null;
                current = next;
            }
            return current.ValueKind switch
            {
                JsonValueKind.String => current.GetString(),
                JsonValueKind.Null => null,
                _ => current.GetRawText(),
            };
        }
        finally
        {
            inner?.Dispose();
        }
    }

    private static bool LooksLikeObject(string? s) => s is not null && s.AsSpan().TrimStart().StartsWith("{");

    private static bool TryResolve(JsonElement root, string[] path, out JsonElement value)
    {
        value = root;
        foreach (string segment in path)
        {
            if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty(segment, out value))
                return false;
        }
        return true;
    }

    private static InputRecord Bad(RawRecord raw, ulong hash, string error, string? id = null, JsonElement? meta = null, string? domain = null) =>
        new() { Index = raw.Index, Id = id, Meta = meta, Domain = domain, Error = error, Hash = hash };

    private static long FirstInvalidUtf8(ReadOnlySpan<byte> line)
    {
        int offset = 0;
        while (offset < line.Length)
        {
            if (Rune.DecodeFromUtf8(line[offset..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
                return offset;
            offset += consumed;
        }
        return offset;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
