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

    /// <summary>Checks the parameters; returns an error line or null.</summary>
    public string? Validate()
    {
        if (Chunk < 2) return $"--chunk must be at least 2 (got {Chunk})";
        if (Window < 2 * Chunk) return $"--window must be at least twice --chunk ({2 * Chunk}); got {Window}";
        if (DAfs < 1) return $"--d-afs must be at least 1 (got {DAfs})";
        if (DCds < 1) return $"--d-cds must be at least 1 (got {DCds})";
        if (Pairs < 1 && Pairs != -1) return $"--pairs must be a positive number or 'all' (got {Pairs})";
        if (!double.IsFinite(Threshold)) return $"--threshold must be a finite number (got {Threshold})";
        return null;
    }
}
