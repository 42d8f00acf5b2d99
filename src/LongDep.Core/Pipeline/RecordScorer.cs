using LongDep.Core.Probes;
using LongDep.Core.Records;
using LongDep.Core.Scoring;

namespace LongDep.Core.Pipeline;

/// <summary>What scoring one record produced: the output line and, when the method ran, its measurements.</summary>
public sealed record ScoreOutcome(ScoreRecord Record, LadmMeasurement? Ladm = null, ProLongResult? ProLong = null, ProLongMeasurement? ProLongMeasurement = null);

/// <summary>
/// Backend-independent scoring of one tokenized record: builds the plan (LADM schedule or ProLong chunks and pairs),
/// asks the probe for measurements and turns them into a score with the formulas of <see cref="Ladm"/> and
/// <see cref="ProLong"/>. One instance per worker; not thread-safe (its probe is not).
/// </summary>
public sealed class RecordScorer
{
    private readonly ScoreSettings _settings;
    private readonly ILadmProbe? _ladm;
    private readonly IProLongProbe? _proLong;

    public RecordScorer(ScoreSettings settings, ILadmProbe? ladm, IProLongProbe? proLong)
    {
        _settings = settings;
        _ladm = ladm;
        _proLong = proLong;
        if (settings.Method == ScoreMethod.Ladm && ladm is null) throw new ArgumentException("LADM scoring needs an LADM probe", nameof(ladm));
        if (settings.Method == ScoreMethod.ProLong && proLong is null) throw new ArgumentException("ProLong scoring needs a ProLong probe", nameof(proLong));
    }

    /// <summary>The record with no measurement: bad input or a status decided before the probe.</summary>
    public static ScoreRecord Base(ScoreSettings settings, InputRecord input, ScoreStatus status, long? tokens, string? error) => new()
    {
        Index = input.Index,
        Id = input.Id,
        Method = settings.MethodName,
        Status = status,
        Tokens = tokens,
        Domain = input.Domain,
        Error = error,
        Meta = input.Meta,
        InputHash = input.Hash,
    };

    /// <summary>Scores <paramref name="tokens"/> of <paramref name="input"/>.</summary>
    public ScoreOutcome Score(InputRecord input, int[] tokens, CancellationToken cancellationToken = default) =>
        _settings.Method == ScoreMethod.Ladm ? ScoreLadm(input, tokens, cancellationToken) : ScoreProLong(input, tokens, cancellationToken);

    private ScoreOutcome ScoreLadm(InputRecord input, int[] tokens, CancellationToken ct)
    {
        var s = _settings;
        int t = Math.Min(tokens.Length, s.Window);
        var schedule = LadmSchedule.Create(t, s.Chunk, s.DAfs, s.DCds);
        if (Ladm.IsTooShort(schedule))
        {
            string why = $"LADM needs more than {LadmSchedule.MinimumTokens(s.Chunk, s.DAfs) - 1} tokens for one span (chunk {s.Chunk}, d_afs {s.DAfs}); the record has {tokens.Length}" +
                         (tokens.Length > t ? $", of which the first {t} are scored (--window {s.Window})" : "");
            return new ScoreOutcome(Base(s, input, ScoreStatus.TooShort, tokens.Length, why));
        }
        LadmMeasurement m;
        using (Diagnostics.Phases.Begin("measure ladm")) m = _ladm!.Measure(tokens.AsSpan(0, t), schedule, ct);
        LadmResult r = Ladm.Cds(m, s.Ablation);
        bool finite = !r.HasNonFinite && double.IsFinite(r.Cds);
        var record = Base(s, input, finite ? ScoreStatus.Ok : ScoreStatus.NumericError, tokens.Length,
            finite ? null : "the CDS is not finite (NaN or infinity in the attention measurements)") with
        {
            Score = finite ? r.Cds : null,
            Layers = r.CdsPerLayer,
        };
        return new ScoreOutcome(record, Ladm: m);
    }

    private ScoreOutcome ScoreProLong(InputRecord input, int[] tokens, CancellationToken ct)
    {
        var s = _settings;
        var plan = ProLongPlan.Create(tokens, s.Window, s.Chunk, s.Pairs, s.Seed, input.Index);
        if (plan.IsTooShort)
        {
            string why = $"ProLong needs at least two full chunks of {s.Chunk} tokens; the record has {tokens.Length} tokens";
            return new ScoreOutcome(Base(s, input, ScoreStatus.TooShort, tokens.Length, why) with { Chunks = plan.Chunks.Count });
        }
        ProLongMeasurement m;
        using (Diagnostics.Phases.Begin("measure prolong")) m = _proLong!.Measure(plan.Chunks, plan.Pairs, ct);
        ProLongResult r = ProLong.Lds(m, plan.ChunkCountN, s.Threshold);
        bool finite = !r.HasNonFinite && double.IsFinite(r.Lds);
        var record = Base(s, input, finite ? ScoreStatus.Ok : ScoreStatus.NumericError, tokens.Length,
            finite ? null : "the LDS is not finite (a perplexity overflowed or is NaN)") with
        {
            Score = finite ? r.Lds : null,
            PairsUsed = r.PairsUsed,
            Chunks = plan.Chunks.Count,
        };
        return new ScoreOutcome(record, ProLong: r, ProLongMeasurement: m);
    }
}
