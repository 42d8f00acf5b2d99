using LongDep.Core.Scoring;

namespace LongDep.Core.Pipeline;

/// <summary>The two scoring methods.</summary>
public enum ScoreMethod { Ladm, ProLong }

/// <summary>The method parameters of SPEC §2–3, with the reference defaults.</summary>
public sealed record ScoreSettings
{
    public required ScoreMethod Method { get; init; }
    /// <summary>W: LADM scores the first min(len, W) tokens; ProLong draws N = W / l chunks at most.</summary>
    public int Window { get; init; } = 32768;
    /// <summary>l: span (LADM) or chunk (ProLong) length in tokens.</summary>
    public int Chunk { get; init; } = 128;
    public int DAfs { get; init; } = 4;
    public int DCds { get; init; } = 4;
    public LadmAblation Ablation { get; init; } = LadmAblation.None;
    /// <summary>P: ProLong pairs drawn per record; -1 means all pairs.</summary>
    public int Pairs { get; init; } = 5000;
    /// <summary>δ: ProLong's DST threshold.</summary>
    public double Threshold { get; init; } = 0.1;
    public long Seed { get; init; } = 11;

    /// <summary>The method's name in output records.</summary>
    public string MethodName => Method == ScoreMethod.Ladm ? "ladm" : "prolong";

    /// <summary>Largest --window: LADM keeps a T × T attention row block per head; 2^20 tokens is far past any model.</summary>
    public const int MaxWindow = 1 << 20;

    /// <summary>Largest N = W / l for ProLong: every pair of N chunks may be drawn (N (N − 1) / 2 of them).</summary>
    public const int MaxProLongChunks = 4096;

    /// <summary>Largest d_afs / d_cds accepted before the window is considered.</summary>
    public const int MaxDistance = 1 << 16;

    /// <summary>The largest d_afs for which a sample of the full window has a span: W − l > l + 4 · l · d_afs.</summary>
    public int MaxDAfs => Math.Max(0, (Window - 2 * Chunk - 1) / (4 * Chunk));

    /// <summary>
    /// Checks the parameters against what the method can compute; returns one line naming the option and its valid
    /// range, or null. (Each option's own range is also checked when the command line is parsed.)
    /// </summary>
    public string? Validate()
    {
        if (Chunk < 2 || Chunk > MaxWindow / 2) return $"--chunk {Chunk} is out of range (valid: 2..{MaxWindow / 2})";
        if (Window < 2 * Chunk || Window > MaxWindow)
            return $"--window {Window} is out of range for --chunk {Chunk} (valid: {2 * Chunk}..{MaxWindow}, at least two chunks)";
        if (Method == ScoreMethod.ProLong && Window / Chunk > MaxProLongChunks)
            return $"--window {Window} / --chunk {Chunk} gives {Window / Chunk} chunks, over ProLong's {MaxProLongChunks} (valid --window for this --chunk: {2 * Chunk}..{(long)MaxProLongChunks * Chunk + Chunk - 1})";
        if (Method == ScoreMethod.Ladm)
        {
            if (DAfs < 1 || DAfs > MaxDAfs)
                return MaxDAfs < 1
                    ? $"--window {Window} is too small for one LADM span with --chunk {Chunk} (valid: more than {6 * Chunk} tokens)"
                    : $"--d-afs {DAfs} is out of range for --window {Window} and --chunk {Chunk} (valid: 1..{MaxDAfs}: a span needs start > l + 4 · l · d_afs)";
            if (DCds < 1 || DCds > Window / Chunk) return $"--d-cds {DCds} is out of range (valid: 1..{Window / Chunk}, --window / --chunk)";
        }
        else
        {
            if (DAfs < 1 || DAfs > MaxDistance) return $"--d-afs {DAfs} is out of range (valid: 1..{MaxDistance})";
            if (DCds < 1 || DCds > MaxDistance) return $"--d-cds {DCds} is out of range (valid: 1..{MaxDistance})";
        }
        if (Pairs < 1 && Pairs != -1) return $"--pairs {Pairs} is out of range (valid: 1..{int.MaxValue} or 'all')";
        if (!double.IsFinite(Threshold)) return $"--threshold {Threshold} is not a finite number";
        return null;
    }
}
