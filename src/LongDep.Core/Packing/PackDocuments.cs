using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;
using LongDep.Core.Records;
using LongDep.Core.Scoring;

namespace LongDep.Core.Packing;

/// <summary>Text → token ids (without BOS/EOS), and the vocabulary size ids are checked against.</summary>
public sealed record PackTokenizer(Func<string, int[]>? Encode, int? VocabSize);

/// <summary>
/// The documents of one source as token ids, in order or shuffled (seeded): MDS datasets straight from their
/// <c>input_ids</c> column (or <c>text</c>, tokenized), other formats through the corpus reader. Records that cannot be
/// used (bad JSON, text without a tokenizer, ids outside the vocabulary) are counted and skipped.
/// </summary>
public sealed class PackDocuments
{
    private readonly PackSource _source;
    private readonly int _sourceIndex;
    private readonly PackOptions _options;
    private readonly PackTokenizer _tokenizer;
    private readonly MdsProgress _mdsProgress = new();
    private readonly CorpusPosition _position = new();
    private readonly bool _isMds;
    private int[] _buffer = new int[1 << 16];

    public PackDocuments(PackSource source, int sourceIndex, PackOptions options, PackTokenizer tokenizer)
    {
        _source = source;
        _sourceIndex = sourceIndex;
        _options = options;
        _tokenizer = tokenizer;
        if (!CorpusReader.InputExists(source.Path))
            throw new FileNotFoundException($"source '{source.Name}': '{source.Path}' does not exist.", source.Path);
        _isMds = CorpusReader.DetectFormat(source.Path) == CorpusFormat.Mds;
        if (_isMds) Dataset = MdsDataset.Open(source.Path); // the index is checked now, before any output
    }

    /// <summary>The MDS dataset, for MDS sources.</summary>
    public MdsDataset? Dataset { get; }
    /// <summary>Records read (usable or not).</summary>
    public long Records { get; private set; }
    /// <summary>Records skipped as unusable.</summary>
    public long BadRecords { get; private set; }
    /// <summary>Why the first unusable record was skipped.</summary>
    public string? FirstBad { get; private set; }

    /// <summary>Fraction of the source read, when known.</summary>
    public double? Fraction => _isMds ? _mdsProgress.Fraction : _position.Fraction;

    /// <summary>
    /// The documents; each memory is valid until the next one is asked for.
    /// </summary>
    /// <exception cref="CorpusFormatException">A damaged source (while enumerating).</exception>
    public IEnumerable<ReadOnlyMemory<int>> Read() =>
        _isMds ? ReadMds(Dataset!) : _options.Shuffle ? ShuffleWindow(ReadCorpus()) : ReadCorpus();

    private DrawRng Rng(ulong stream) => new(_options.Seed, _sourceIndex, stream);

    private IEnumerable<ReadOnlyMemory<int>> ReadMds(MdsDataset dataset)
    {
        int[] order = Enumerable.Range(0, dataset.Shards.Count).ToArray();
        DrawRng rng = Rng(1);
        if (_options.Shuffle) Permute(order, ref rng);
        _mdsProgress.Start(dataset.SampleCount);
        string idsName = _options.Fields.IdsField, textName = _options.Fields.TextField;
        foreach (MdsShard shard in dataset.ReadShards(order))
        {
            int ids = shard.Info.ColumnIndex(idsName), text = shard.Info.ColumnIndex(textName);
            if (ids < 0 && text < 0)
                throw new CorpusFormatException(
                    $"source '{_source.Name}': {shard.Info.FileName} has neither an '{idsName}' nor a '{textName}' column (it has {string.Join(", ", shard.Info.Columns.Select(c => c.Name))}); name them with --ids-field / --text-field.");
            MdsEncoding? idsEncoding = ids >= 0 ? shard.Info.Columns[ids].Encoding : null;
            if (idsEncoding is not null && idsEncoding.Kind != MdsColumnKind.NdArray)
                throw new CorpusFormatException(
                    $"source '{_source.Name}': column '{idsName}' of {shard.Info.FileName} is '{idsEncoding}', expected an ndarray of token ids.");
            int[] samples = Enumerable.Range(0, shard.Count).ToArray();
            if (_options.Shuffle) Permute(samples, ref rng);
            foreach (int i in samples)
            {
                Records++;
                _mdsProgress.Advance(1);
                string? error;
                ReadOnlyMemory<int> doc = default;
                if (idsEncoding is not null)
                {
                    ReadOnlySpan<byte> value = shard.Column(i, ids);
                    error = MdsValue.TryReadArray(value, idsEncoding, out MdsArray array);
                    if (error is null)
                    {
                        if (_buffer.Length < array.Count) _buffer = new int[Math.Max(array.Count, 2L * _buffer.Length)];
                        error = MdsValue.TryReadTokens(value, array, _buffer);
                        doc = _buffer.AsMemory(0, (int)array.Count);
                    }
                }
                else
                {
                    string? s = MdsValue.TryReadString(shard.Column(i, text), out error);
                    if (s is not null) (doc, error) = Tokenize(s);
                }
                error ??= CheckVocabulary(doc.Span);
                if (error is not null)
                {
                    Bad($"sample {i} of {shard.Info.FileName}: {error}");
                    continue;
                }
                yield return doc;
            }
        }
    }

    private IEnumerable<ReadOnlyMemory<int>> ReadCorpus()
    {
        var parser = new RecordParser(_options.Fields);
        foreach (RawRecord raw in CorpusReader.Open(_source.Path, _options.Fields, position: _position))
        {
            Records++;
            InputRecord record = parser.Parse(raw);
            string? error = record.Error;
            ReadOnlyMemory<int> doc = default;
            if (error is null)
            {
                if (record.InputIds is { } ids) doc = ids;
                else (doc, error) = Tokenize(record.Text!);
            }
            error ??= CheckVocabulary(doc.Span);
            if (error is not null)
            {
                Bad($"record {raw.Index}: {error}");
                continue;
            }
            yield return doc;
        }
    }

    /// <summary>A seeded shuffle window: holds documents until it has the window's tokens, then gives a random one.</summary>
    private IEnumerable<ReadOnlyMemory<int>> ShuffleWindow(IEnumerable<ReadOnlyMemory<int>> documents)
    {
        DrawRng rng = Rng(2);
        var window = new List<int[]>();
        long tokens = 0;
        foreach (ReadOnlyMemory<int> doc in documents)
        {
            window.Add(doc.ToArray());
            tokens += doc.Length;
            while (tokens >= _options.ShuffleWindowTokens && window.Count > 0)
                yield return TakeRandom(window, ref rng, ref tokens);
        }
        while (window.Count > 0)
            yield return TakeRandom(window, ref rng, ref tokens);
    }

    private static int[] TakeRandom(List<int[]> window, ref DrawRng rng, ref long tokens)
    {
        int k = (int)rng.NextBelow((ulong)window.Count);
        int[] doc = window[k];
        window[k] = window[^1];
        window.RemoveAt(window.Count - 1);
        tokens -= doc.Length;
        return doc;
    }

    private static void Permute(int[] items, ref DrawRng rng)
    {
        for (int k = items.Length - 1; k > 0; k--)
        {
            int j = (int)rng.NextBelow((ulong)(k + 1));
            (items[k], items[j]) = (items[j], items[k]);
        }
    }

    private (ReadOnlyMemory<int> Doc, string? Error) Tokenize(string text)
    {
        if (_tokenizer.Encode is null)
            return (default, "the record has text but no tokenizer is loaded (give --model, or records with input_ids)");
        try
        {
            return (_tokenizer.Encode(text), null);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return (default, $"cannot tokenize the text: {e.Message}");
        }
    }

    private string? CheckVocabulary(ReadOnlySpan<int> ids) =>
        _tokenizer.VocabSize is { } vocab ? InputRecord.CheckVocabulary(ids, vocab) : null;

    private void Bad(string why)
    {
        BadRecords++;
        FirstBad ??= why;
    }
}
