namespace LongDep.Models;

/// <summary>
/// The rotary frequencies a layer uses, in float64, and the factor its cos and sin are multiplied by: RoPE's
/// θ^(−2i/d) changed by the model's scaling (SPEC §6: linear, dynamic NTK, llama3, yarn, longrope) as transformers'
/// rope initialisation functions and llama.cpp's rope compute them. Shared by the CPU forward and the GPU's tables.
/// </summary>
public sealed record RopeFrequencies(double[] InverseFrequencies, double AttentionFactor)
{
    /// <summary>
    /// The frequencies of <paramref name="layer"/> of <paramref name="c"/> for a run whose positions reach
    /// <paramref name="sequenceLength"/> (prefix included): dynamic NTK and longrope depend on it, as transformers'
    /// do on the largest position of the forward.
    /// </summary>
    public static RopeFrequencies For(ModelConfig c, int layer, int sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(c);
        int d = c.HeadDim, half = d / 2;
        bool local = c.LocalRopeTheta is not null && c.WindowOf(layer) is not null;
        double theta = local ? c.LocalRopeTheta!.Value : c.RopeTheta;
        var s = local ? RopeScaling.None : c.RopeScaling;

        var inv = new double[half];
        for (int i = 0; i < half; i++) inv[i] = Math.Pow(theta, -2.0 * i / d);
        double attention = 1.0;
        switch (s.Type)
        {
            case RopeScalingType.None:
                break;
            case RopeScalingType.Linear:
                for (int i = 0; i < half; i++) inv[i] /= s.Factor;
                break;
            case RopeScalingType.Dynamic:
                if (sequenceLength > s.OriginalContext)
                {
                    double b = theta * Math.Pow(s.Factor * sequenceLength / s.OriginalContext - (s.Factor - 1), d / (d - 2.0));
                    for (int i = 0; i < half; i++) inv[i] = Math.Pow(b, -2.0 * i / d);
                }
                break;
            case RopeScalingType.Llama3:
                Llama3(s, inv);
                break;
            case RopeScalingType.Yarn:
                attention = Yarn(s, theta, d, inv);
                break;
            case RopeScalingType.LongRope:
            {
                var factors = sequenceLength > s.OriginalContext ? s.LongFactors! : s.ShortFactors!;
                for (int i = 0; i < half; i++) inv[i] /= factors[i];
                double scale = (double)c.ContextLength / s.OriginalContext;
                attention = s.AttentionFactor ?? (scale <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(scale) / Math.Log(s.OriginalContext)));
                break;
            }
            default:
                throw new NotSupportedException($"RoPE scaling {s.Type}");
        }
        return new RopeFrequencies(inv, attention);
    }

    /// <summary>Whether runs of length <paramref name="a"/> and <paramref name="b"/> rotate by the same frequencies on every layer.</summary>
    public static bool SameFor(ModelConfig c, int a, int b)
    {
        if (c.Positions != PositionKind.Rope || !c.RopeScaling.DependsOnLength) return true;
        for (int layer = 0; layer < c.Layers; layer++)
        {
            var x = For(c, layer, a);
            var y = For(c, layer, b);
            if (x.AttentionFactor != y.AttentionFactor || !x.InverseFrequencies.AsSpan().SequenceEqual(y.InverseFrequencies)) return false;
        }
        return true;
    }

    private static void Llama3(RopeScaling s, double[] inv)
    {
        if (s.FrequencyFactors is { } f)
        {
            // llama.cpp's form: the converter stored one divisor per frequency (the rope_freqs tensor).
            for (int i = 0; i < inv.Length; i++) inv[i] /= f[i];
            return;
        }
        double lowWavelen = s.OriginalContext / s.LowFreqFactor;
        double highWavelen = s.OriginalContext / s.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highWavelen) continue;                          // high frequencies kept
            if (wavelen > lowWavelen) { inv[i] /= s.Factor; continue; }   // low frequencies scaled
            double smooth = (s.OriginalContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
        }
    }

    /// <summary>YaRN: interpolation below the correction range, extrapolation above, a linear ramp between; returns the attention factor.</summary>
    private static double Yarn(RopeScaling s, double theta, int d, double[] inv)
    {
        double CorrectionDim(double rotations) =>
            d * Math.Log(s.OriginalContext / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = Math.Max(Math.Floor(CorrectionDim(s.BetaFast)), 0);
        double high = Math.Min(Math.Ceiling(CorrectionDim(s.BetaSlow)), d - 1);
        double width = high == low ? 0.001 : high - low;
        for (int i = 0; i < inv.Length; i++)
        {
            double ramp = Math.Clamp((i - low) / width, 0, 1);
            double extrapolation = 1 - ramp;
            double interpolated = inv[i] / s.Factor;
            inv[i] = interpolated * (1 - extrapolation) + inv[i] * extrapolation;
        }
        return s.AttentionFactor ?? (s.Factor <= 1 ? 1.0 : 0.1 * Math.Log(s.Factor) + 1.0);
    }
}
