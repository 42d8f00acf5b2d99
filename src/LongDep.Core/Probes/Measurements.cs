namespace LongDep.Core.Probes;

/// <summary>
/// What an LADM probe measures: <c>Pfs[layer][span][k]</c> is PFS at <c>schedule.Spans[span].Intervals[k]</c>
/// for that layer (attention mass, summed over the span's query rows, averaged over heads).
/// </summary>
public sealed record LadmMeasurement(LadmSchedule Schedule, double[][][] Pfs);

/// <summary>A drawn ProLong pair: chunk <see cref="I"/> scored after chunk <see cref="J"/>, J &lt; I.</summary>
public readonly record struct ChunkPair(int I, int J);

/// <summary>
/// What a ProLong probe measures: <c>SinglePpl[i]</c> for every chunk and <c>PairPpl[k]</c> for <c>Pairs[k]</c>.
/// </summary>
public sealed record ProLongMeasurement(double[] SinglePpl, IReadOnlyList<ChunkPair> Pairs, double[] PairPpl);
