using System.Diagnostics;
using LongDep.Core.Corpus;
using LongDep.Core.Corpus.Mds;

namespace LongDep.Core.Packing;

/// <summary>Where a pack run stands, reported after every written sequence.</summary>
public sealed record PackProgress(long Sequences, long Tokens, long? BudgetSequences, TimeSpan Elapsed, double? Fraction);

/// <summary>
/// <c>longdep pack</c>: composes sources by token share into fixed-length sequences and writes them as an MDS dataset
/// (columns <c>domain</c>, <c>indices</c>, <c>input_ids</c>, <c>length</c>, as ProLong's packed data).
/// </summary>
/// <remarks>
/// Each source has its own packer (<see cref="SequencePacker"/>), so every sequence holds documents of one source and
/// carries its name as the domain, as in the recipe's data. Sequences are drawn from the sources so that after every
/// sequence each source's count stays within one sequence of its share of the total (earliest deadline among the
/// sources not ahead of their share), which interleaves the mixture evenly through the output. The run stops at the
/// token budget, or when a source whose turn it is has no document left. The output is a pure function of the inputs
/// and the options: the same command gives the same bytes.
/// </remarks>
public static class PackRun
{
    /// <summary>The output dataset's columns.</summary>
    public static IReadOnlyList<MdsColumn> Columns { get; } =
    [
        new("domain", MdsEncoding.Str), new("indices", MdsEncoding.NdArrayUInt32), new("input_ids", MdsEncoding.NdArrayUInt32),
        new("length", MdsEncoding.Int32),
    ];

    /// <summary>Name of the summary written beside the shards.</summary>
    public const string SummaryFileName = "pack-summary.json";

    private sealed class Source(PackSource spec, PackDocuments documents, SequencePacker packer)
    {
        public PackSource Spec { get; } = spec;
        public PackDocuments Documents { get; } = documents;
        public SequencePacker Packer { get; } = packer;
        public IEnumerator<ReadOnlyMemory<int>>? Reader;
        public bool Exhausted;
        public long Sequences;
    }

    public static PackSummary Execute(PackOptions options, PackTokenizer tokenizer, IProgress<PackProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } bad) throw new ArgumentException(bad);
        var clock = Stopwatch.StartNew();
        var sources = options.Sources.Select((s, k) => new Source(s, new PackDocuments(s, k, options, tokenizer),
            new SequencePacker(options.SeqLen, options.Bins, options.MinLength, options.Bos, options.Eos))).ToArray();
        long? budget = options.TokenBudget / options.SeqLen;
        string? stoppedBy = null;
        long total = 0;
        var indexShape = new int[2];

        using (var writer = new MdsWriter(options.OutputPath, Columns, options.Writer, options.Overwrite))
        {
            string summaryPath = Path.Combine(options.OutputPath, SummaryFileName);
            if (File.Exists(summaryPath)) File.Delete(summaryPath);
            try
            {
                while (budget is null || total < budget)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Source s = Next(sources, total + 1);
                    PackedSequence? seq = NextSequence(s);
                    if (seq is null)
                    {
                        stoppedBy = s.Spec.Name;
                        break;
                    }
                    writer.BeginSample();
                    writer.WriteString(s.Spec.Name);
                    indexShape[0] = seq.Pieces;
                    indexShape[1] = 2;
                    writer.WriteIntArray(seq.Indices, indexShape);
                    writer.WriteIntArray(seq.Tokens);
                    writer.WriteInteger(options.SeqLen);
                    writer.EndSample();
                    s.Packer.Recycle(seq);
                    s.Sequences++;
                    total++;
                    progress?.Report(new PackProgress(total, total * options.SeqLen, budget, clock.Elapsed, Fraction(sources, budget, total)));
                }
                MdsWriteSummary written = writer.Finish();
                var summary = PackSummary.Create(options, sources.Select(s => (s.Spec, s.Documents, s.Packer, s.Sequences)).ToArray(),
                    total, budget, stoppedBy, written, clock.Elapsed);
                File.WriteAllText(summaryPath, summary.ToJson());
                return summary;
            }
            finally
            {
                foreach (Source s in sources) s.Reader?.Dispose();
            }
        }
    }

    /// <summary>
    /// The source whose sequence comes next: among those not ahead of their share after this sequence
    /// (count &lt; t × share), the one whose next sequence is due first ((count + 1) / share), the first on ties.
    /// Keeps |count − t × share| &lt; 1 for every source at every t.
    /// </summary>
    public static int NextIndex(IReadOnlyList<double> shares, IReadOnlyList<long> counts, long t)
    {
        int best = -1;
        double due = double.PositiveInfinity;
        for (int k = 0; k < shares.Count; k++)
        {
            if (counts[k] >= t * shares[k]) continue;
            double d = (counts[k] + 1) / shares[k];
            if (d < due)
            {
                due = d;
                best = k;
            }
        }
        if (best >= 0) return best;
        // Rounding of shares that sum to 1 within the tolerance: the source furthest behind.
        best = 0;
        for (int k = 1; k < shares.Count; k++)
            if (t * shares[k] - counts[k] > t * shares[best] - counts[best]) best = k;
        return best;
    }

    private static Source Next(Source[] sources, long t) =>
        sources[NextIndex(sources.Select(s => s.Spec.Share).ToArray(), sources.Select(s => s.Sequences).ToArray(), t)];

    private static PackedSequence? NextSequence(Source s)
    {
        while (s.Packer.Ready == 0)
        {
            if (s.Exhausted) return null;
            s.Reader ??= s.Documents.Read().GetEnumerator();
            if (!s.Reader.MoveNext())
            {
                s.Exhausted = true;
                return null;
            }
            s.Packer.Add(s.Reader.Current.Span);
        }
        return s.Packer.Take();
    }

    private static double? Fraction(Source[] sources, long? budget, long total)
    {
        if (budget is { } b) return (double)total / b;
        double? most = null;
        foreach (Source s in sources)
            if (s.Documents.Fraction is { } f) most = Math.Max(most ?? 0, f);
        return most;
    }
}
