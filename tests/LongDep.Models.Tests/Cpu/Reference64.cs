using LongDep.Core.Probes;
using LongDep.Models;

namespace LongDep.Models.Tests.Cpu;

/// <summary>
/// A float64 decoder forward written with plain loops from the published architectures (transformers' modeling code
/// for Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3 and OPT; its RoPE initialisation functions for the scalings),
/// independent of the production code: the yardstick for <c>CpuForward</c> and the CPU probes. It reads the weights
/// as stored and the config's description; everything it computes (norms, RoPE frequencies, masks, soft-caps) is its own.
/// Positions start at <c>position0</c> (0 by default).
/// </summary>
internal sealed class Reference64
{
    private readonly ModelWeights _w;
    private readonly ModelConfig _c;

    public Reference64(ModelWeights weights)
    {
        _w = weights;
        _c = weights.Config;
    }

    /// <summary>Post-RoPE Q [T, QDim] and K [T, KvDim] of every layer, filled when requested (q after OPT's scaling).</summary>
    public List<(double[,] Q, double[,] K)> QK { get; } = [];

    /// <summary>Logits [T, Vocab] (null when <paramref name="withLogits"/> is false: only Q/K are wanted).</summary>
    public double[,]? Run(int[] tokens, bool keepQK = false, bool withLogits = true)
    {
        int n = tokens.Length, dim = _c.Dim, hd = _c.HeadDim, heads = _c.Heads, kvHeads = _c.KvHeads, e = _c.EmbeddingWidth;
        var emb = new double[n, e];
        var embedding = _w.TokenEmbedding.ToFloat32();
        for (int t = 0; t < n; t++)
            for (int i = 0; i < e; i++) emb[t, i] = embedding[(long)tokens[t] * e + i] * (double)_c.EmbedScale;
        var h = _c.HasProjections ? Linear(emb, _w.ProjectIn!.ToFloat32(), dim, null) : emb;
        if (_c.Positions == PositionKind.Learned)
            for (int t = 0; t < n; t++)
                for (int i = 0; i < dim; i++) h[t, i] += _w.PositionEmbedding![(long)(t + _c.PositionOffset) * dim + i];

        bool post = _c.NormPlacement == NormPlacement.Post;
        for (int layer = 0; layer < _c.Layers; layer++)
        {
            var w = _w.Layers[layer];
            var x = post ? h : Norm(h, w.AttnNorm, w.AttnNormBias);
            var q = Linear(x, w.Wq.ToFloat32(), _c.QDim, w.Bq);
            var k = Linear(x, w.Wk.ToFloat32(), _c.KvDim, w.Bk);
            var v = Linear(x, w.Wv.ToFloat32(), _c.KvDim, w.Bv);
            double scale = _c.AttentionScale ?? 1.0 / Math.Sqrt(hd);
            if (_c.ScaleQueries)
            {
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < _c.QDim; i++) q[t, i] *= scale;
                scale = 1.0;
            }
            if (_c.QkNorm)
            {
                HeadRms(q, heads, w.QNorm!);
                HeadRms(k, kvHeads, w.KNorm!);
            }
            if (_c.Positions == PositionKind.Rope)
            {
                var (inv, factor) = Frequencies(layer, n);
                Rope(q, heads, inv, factor);
                Rope(k, kvHeads, inv, factor);
            }
            if (keepQK) QK.Add((q, k));
            if (!withLogits && layer == _c.Layers - 1) return null;

            // Full causal attention, one query row at a time.
            int? window = SlidingWindow(layer);
            var o = new double[n, _c.QDim];
            var scores = new double[n];
            for (int head = 0; head < heads; head++)
            {
                int g = head / (heads / kvHeads);
                for (int t = 0; t < n; t++)
                {
                    int first = window is int wnd ? Math.Max(0, t - wnd + 1) : 0;
                    double max = double.NegativeInfinity;
                    for (int s = first; s <= t; s++)
                    {
                        double dot = 0;
                        for (int i = 0; i < hd; i++) dot += q[t, head * hd + i] * k[s, g * hd + i];
                        double z = dot * scale;
                        if (_c.AttentionSoftCap is float cap) z = cap * Math.Tanh(z / cap);
                        scores[s] = z;
                        max = Math.Max(max, z);
                    }
                    double sum = 0;
                    for (int s = first; s <= t; s++) { scores[s] = Math.Exp(scores[s] - max); sum += scores[s]; }
                    for (int s = first; s <= t; s++)
                    {
                        double p = scores[s] / sum;
                        for (int i = 0; i < hd; i++) o[t, head * hd + i] += p * v[s, g * hd + i];
                    }
                }
            }
            var attnOut = Linear(o, w.Wo.ToFloat32(), dim, w.Bo);
            if (w.PostAttnNorm is not null) attnOut = Norm(attnOut, w.PostAttnNorm, null);
            Add(h, attnOut);
            if (post) h = Norm(h, w.AttnNorm, w.AttnNormBias);

            x = post ? h : Norm(h, w.FfnNorm, w.FfnNormBias);
            var up = Linear(x, w.WUp.ToFloat32(), _c.FfDim, w.BUp);
            if (_c.FeedForward == FeedForwardKind.Relu)
            {
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < _c.FfDim; i++) up[t, i] = Math.Max(0, up[t, i]);
            }
            else
            {
                var gate = Linear(x, w.WGate!.ToFloat32(), _c.FfDim, null);
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < _c.FfDim; i++)
                    {
                        double z = gate[t, i];
                        double act = _c.FeedForward == FeedForwardKind.SwiGlu
                            ? z / (1 + Math.Exp(-z))
                            : 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)));
                        up[t, i] = act * up[t, i];
                    }
            }
            var ffOut = Linear(up, w.WDown.ToFloat32(), dim, w.BDown);
            if (w.PostFfnNorm is not null) ffOut = Norm(ffOut, w.PostFfnNorm, null);
            Add(h, ffOut);
            if (post) h = Norm(h, w.FfnNorm, w.FfnNormBias);
        }
        if (!withLogits) return null;
        var final = _c.FinalNorm ? Norm(h, _w.OutputNorm!, _w.OutputNormBias) : h;
        if (_c.HasProjections) final = Linear(final, _w.ProjectOut!.ToFloat32(), e, null);
        var logits = Linear(final, _w.Output.ToFloat32(), _c.VocabSize, null);
        if (_c.FinalSoftCap is float fc)
            for (int t = 0; t < n; t++)
                for (int i = 0; i < _c.VocabSize; i++) logits[t, i] = fc * Math.Tanh(logits[t, i] / fc);
        return logits;
    }

    /// <summary>PFS[layer][span][k] in float64 from the reference's Q and K, with the model's scale, soft-cap and window (SPEC §2).</summary>
    public static double[][][] Pfs(ModelWeights weights, int[] tokens, LadmSchedule schedule)
    {
        var c = weights.Config;
        var reference = new Reference64(weights);
        reference.Run(tokens, keepQK: true, withLogits: false);
        int d = c.HeadDim, group = c.Heads / c.KvHeads;
        double scale = c.ScaleQueries ? 1.0 : c.AttentionScale ?? 1.0 / Math.Sqrt(d);
        var result = new double[c.Layers][][];
        for (int layer = 0; layer < c.Layers; layer++)
        {
            var (q, k) = reference.QK[layer];
            int? window = c.SlidingWindow is int sw && (c.SlidingLayers is null || c.SlidingLayers[layer]) ? sw : null;
            result[layer] = new double[schedule.Spans.Count][];
            for (int si = 0; si < schedule.Spans.Count; si++)
            {
                var span = schedule.Spans[si];
                var col = new double[span.Start];
                for (int h = 0; h < c.Heads; h++)
                {
                    int g = h / group;
                    for (int t = span.Start; t < span.End; t++)
                    {
                        int first = window is int wnd ? Math.Max(0, t - wnd + 1) : 0;
                        if (first >= span.Start) continue;
                        var logit = new double[span.Start];
                        for (int s = first; s < span.Start; s++)
                        {
                            double dot = 0;
                            for (int i = 0; i < d; i++) dot += q[t, h * d + i] * k[s, g * d + i];
                            double z = dot * scale;
                            logit[s] = c.AttentionSoftCap is float cap ? cap * Math.Tanh(z / cap) : z;
                        }
                        double max = logit.Skip(first).Max();
                        double sum = logit.Skip(first).Sum(x => Math.Exp(x - max));
                        for (int s = first; s < span.Start; s++) col[s] += Math.Exp(logit[s] - max) / sum / c.Heads;
                    }
                }
                result[layer][si] = span.Intervals
                    .Select(iv => Enumerable.Range(span.Start - iv, span.End - span.Start).Sum(s => col[s]))
                    .ToArray();
            }
        }
        return result;
    }

    /// <summary>−log softmax(logits[t])[target].</summary>
    public static double Nll(double[,] logits, int t, int target)
    {
        int vocab = logits.GetLength(1);
        double max = double.NegativeInfinity;
        for (int i = 0; i < vocab; i++) max = Math.Max(max, logits[t, i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.Exp(logits[t, i] - max);
        return max + Math.Log(sum) - logits[t, target];
    }

    private int? SlidingWindow(int layer) =>
        _c.SlidingWindow is int w && (_c.SlidingLayers is null || _c.SlidingLayers[layer]) ? w : null;

    /// <summary>
    /// Inverse frequencies and the cos/sin multiplier of a layer, for a sequence of <paramref name="n"/> positions,
    /// as transformers' rope initialisation functions define them (llama3, yarn, longrope, dynamic, linear).
    /// </summary>
    private (double[] Inv, double Factor) Frequencies(int layer, int n)
    {
        int d = _c.HeadDim, half = d / 2;
        bool local = _c.LocalRopeTheta is not null && SlidingWindow(layer) is not null;
        double theta = local ? _c.LocalRopeTheta!.Value : _c.RopeTheta;
        var s = local ? RopeScaling.None : _c.RopeScaling;
        double Plain(double b, int i) => 1.0 / Math.Pow(b, 2.0 * i / d);
        var inv = new double[half];
        double factor = 1;
        for (int i = 0; i < half; i++) inv[i] = Plain(theta, i);
        switch (s.Type)
        {
            case RopeScalingType.Linear:
                for (int i = 0; i < half; i++) inv[i] = Plain(theta, i) / s.Factor;
                break;
            case RopeScalingType.Dynamic when n > s.OriginalContext:
                double b = theta * Math.Pow(s.Factor * n / s.OriginalContext - (s.Factor - 1), d / (d - 2.0));
                for (int i = 0; i < half; i++) inv[i] = Plain(b, i);
                break;
            case RopeScalingType.Llama3 when s.FrequencyFactors is { } ff:
                for (int i = 0; i < half; i++) inv[i] = Plain(theta, i) / ff[i];
                break;
            case RopeScalingType.Llama3:
                for (int i = 0; i < half; i++)
                {
                    double f = Plain(theta, i), wavelen = 2 * Math.PI / f;
                    double lowWl = s.OriginalContext / s.LowFreqFactor, highWl = s.OriginalContext / s.HighFreqFactor;
                    if (wavelen > lowWl) inv[i] = f / s.Factor;
                    else if (wavelen < highWl) inv[i] = f;
                    else
                    {
                        double smooth = (s.OriginalContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                        inv[i] = (1 - smooth) * f / s.Factor + smooth * f;
                    }
                }
                break;
            case RopeScalingType.Yarn:
            {
                double Dim(double rot) => d * Math.Log(s.OriginalContext / (rot * 2 * Math.PI)) / (2 * Math.Log(theta));
                double lo = Math.Max(Math.Floor(Dim(s.BetaFast)), 0), hi = Math.Min(Math.Ceiling(Dim(s.BetaSlow)), d - 1);
                if (lo == hi) hi += 0.001;
                for (int i = 0; i < half; i++)
                {
                    double extrapolationFactor = 1 - Math.Min(1, Math.Max(0, (i - lo) / (hi - lo)));
                    double extrapolation = Plain(theta, i), interpolation = extrapolation / s.Factor;
                    inv[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
                }
                factor = s.AttentionFactor ?? 0.1 * Math.Log(s.Factor) + 1;
                break;
            }
            case RopeScalingType.LongRope:
            {
                var ext = n > s.OriginalContext ? s.LongFactors! : s.ShortFactors!;
                for (int i = 0; i < half; i++) inv[i] = 1.0 / (ext[i] * Math.Pow(theta, 2.0 * i / d));
                double scale = (double)_c.ContextLength / s.OriginalContext;
                factor = s.AttentionFactor ?? (scale <= 1 ? 1 : Math.Sqrt(1 + Math.Log(scale) / Math.Log(s.OriginalContext)));
                break;
            }
        }
        return (inv, factor);
    }

    private double[,] Norm(double[,] h, float[] weight, float[]? bias)
    {
        int n = h.GetLength(0), dim = h.GetLength(1);
        var y = new double[n, dim];
        for (int t = 0; t < n; t++)
        {
            if (_c.Norm == NormKind.LayerNorm)
            {
                double mean = 0, var = 0;
                for (int i = 0; i < dim; i++) mean += h[t, i];
                mean /= dim;
                for (int i = 0; i < dim; i++) var += (h[t, i] - mean) * (h[t, i] - mean);
                var /= dim;
                double r = 1.0 / Math.Sqrt(var + _c.NormEps);
                for (int i = 0; i < dim; i++) y[t, i] = (h[t, i] - mean) * r * weight[i] + bias![i];
            }
            else
            {
                double ss = 0;
                for (int i = 0; i < dim; i++) ss += h[t, i] * h[t, i];
                double r = 1.0 / Math.Sqrt(ss / dim + _c.NormEps);
                for (int i = 0; i < dim; i++) y[t, i] = weight[i] * h[t, i] * r;
            }
        }
        return y;
    }

    private void HeadRms(double[,] x, int heads, float[] weight)
    {
        int hd = _c.HeadDim;
        for (int t = 0; t < x.GetLength(0); t++)
            for (int head = 0; head < heads; head++)
            {
                double ss = 0;
                for (int i = 0; i < hd; i++) ss += x[t, head * hd + i] * x[t, head * hd + i];
                double r = 1.0 / Math.Sqrt(ss / hd + _c.NormEps);
                for (int i = 0; i < hd; i++) x[t, head * hd + i] = weight[i] * x[t, head * hd + i] * r;
            }
    }

    private static double[,] Linear(double[,] x, float[] w, int outDim, float[]? bias)
    {
        int n = x.GetLength(0), inDim = x.GetLength(1);
        var y = new double[n, outDim];
        for (int t = 0; t < n; t++)
            for (int o = 0; o < outDim; o++)
            {
                double s = bias is null ? 0 : bias[o];
                for (int i = 0; i < inDim; i++) s += w[(long)o * inDim + i] * x[t, i];
                y[t, o] = s;
            }
        return y;
    }

    private static void Add(double[,] h, double[,] delta)
    {
        for (int t = 0; t < h.GetLength(0); t++)
            for (int i = 0; i < h.GetLength(1); i++) h[t, i] += delta[t, i];
    }

    /// <summary>RoPE at position t for row t; pair i is (2i, 2i+1) or (i, i + d/2) depending on the style; cos and sin times the factor.</summary>
    private void Rope(double[,] x, int heads, double[] inv, double factor)
    {
        int hd = _c.HeadDim, half = hd / 2;
        for (int t = 0; t < x.GetLength(0); t++)
            for (int head = 0; head < heads; head++)
                for (int i = 0; i < half; i++)
                {
                    double angle = t * inv[i];
                    double cos = Math.Cos(angle) * factor, sin = Math.Sin(angle) * factor;
                    (int a, int b) = _c.Rope == RopeStyle.AdjacentPairs ? (2 * i, 2 * i + 1) : (i, i + half);
                    a += head * hd; b += head * hd;
                    double xa = x[t, a], xb = x[t, b];
                    x[t, a] = xa * cos - xb * sin;
                    x[t, b] = xa * sin + xb * cos;
                }
    }
}
