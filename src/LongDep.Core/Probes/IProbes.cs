namespace LongDep.Core.Probes;

/// <summary>Backend-specific measurement for LADM (CPU or CUDA). Returns measurements, never scores.</summary>
public interface ILadmProbe : IDisposable
{
    /// <summary>Runs the model over <paramref name="tokens"/> (length == schedule.T) and measures PFS for every layer and span.</summary>
    LadmMeasurement Measure(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken cancellationToken = default);
}

/// <summary>Backend-specific measurement for ProLong (CPU or CUDA). Returns measurements, never scores.</summary>
public interface IProLongProbe : IDisposable
{
    /// <summary>
    /// <paramref name="chunks"/>: the record's (drawn) chunks in document order, each exactly l tokens.
    /// <paramref name="pairs"/>: the drawn pairs. single_ppl of every chunk and pair_ppl of every pair, as SPEC §3 defines them.
    /// </summary>
    ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken cancellationToken = default);
}
