namespace LongDep.Core.Records;

/// <summary>
/// Where a record's fields live. Each is a dotted path into the JSON object (or Parquet row), e.g. <c>meta.pile_set_name</c>.
/// </summary>
public sealed record RecordFieldOptions
{
    /// <summary>Default field options: text, input_ids, id, meta, meta.pile_set_name.</summary>
    public static RecordFieldOptions Default { get; } = new();

    /// <summary>The document text (<c>--text-field</c>).</summary>
    public string TextField { get; init; } = "text";
    /// <summary>Pre-tokenized ids, used as they are when present (<c>--ids-field</c>).</summary>
    public string IdsField { get; init; } = "input_ids";
    /// <summary>The record's id, written to the output.</summary>
    public string IdField { get; init; } = "id";
    /// <summary>Metadata passed through to the output.</summary>
    public string MetaField { get; init; } = "meta";
    /// <summary>The domain used by per-domain selection (<c>--domain-field</c>).</summary>
    public string DomainField { get; init; } = "meta.pile_set_name";

    internal static string[] SplitPath(string path, string option)
    {
        string[] parts = path.Split('.');
        if (parts.Length == 0 || Array.Exists(parts, p => p.Length == 0))
            throw new ArgumentException($"Field path '{path}' given for {option} has an empty segment; write names separated by single dots, e.g. meta.pile_set_name.", option);
        return parts;
    }
}
