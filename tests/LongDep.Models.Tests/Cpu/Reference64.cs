using LongDep.Models;

namespace LongDep.Models.Tests.Cpu;

/// <summary>
/// A float64 Llama forward written with plain loops, independent of the production code: the yardstick for
/// <c>CpuForward</c> and the CPU probes. Positions start at 0.
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

    /// <summary>Post-RoPE Q [T, QDim] and K [T, KvDim] of every layer, filled when requested.</summary>
    public List<(double[,] Q, double[,] K)> QK { get; } = [];

    /// <summary>Logits [T, Vocab] (null when <paramref name="withLogits"/> is false: only Q/K are wanted).</summary>
    public double[,]? Run(int[] tokens, bool keepQK = false, bool withLogits = true)
    {
        int n = tokens.Length, dim = _c.Dim, hd = _c.HeadDim, heads = _c.Heads, kvHeads = _c.KvHeads;
        var h = new double[n, dim];
        for (int t = 0; t < n; t++)
            for (int i = 0; i < dim; i++) h[t, i] = _w.TokenEmbedding[tokens[t] * dim + i];

        for (int layer = 0; layer < _c.Layers; layer++)
        {
            var w = _w.Layers[layer];
            var x = Norm(h, w.AttnNorm);
            var q = Linear(x, w.Wq, _c.QDim, w.Bq);
            var k = Linear(x, w.Wk, _c.KvDim, w.Bk);
            var v = Linear(x, w.Wv, _c.KvDim, w.Bv);
            Rope(q, heads);
            Rope(k, kvHeads);
            if (keepQK) QK.Add((q, k));
            if (!withLogits && layer == _c.Layers - 1) return null;

            // Full causal attention, one query row at a time.
            var o = new double[n, _c.QDim];
            var scores = new double[n];
            double scale = 1.0 / Math.Sqrt(hd);
            for (int head = 0; head < heads; head++)
            {
                int g = head / (heads / kvHeads);
                for (int t = 0; t < n; t++)
                {
                    double max = double.NegativeInfinity;
                    for (int s = 0; s <= t; s++)
                    {
                        double dot = 0;
                        for (int i = 0; i < hd; i++) dot += q[t, head * hd + i] * k[s, g * hd + i];
                        scores[s] = dot * scale;
                        max = Math.Max(max, scores[s]);
                    }
                    double sum = 0;
                    for (int s = 0; s <= t; s++) { scores[s] = Math.Exp(scores[s] - max); sum += scores[s]; }
                    for (int s = 0; s <= t; s++)
                    {
                        double p = scores[s] / sum;
                        for (int i = 0; i < hd; i++) o[t, head * hd + i] += p * v[s, g * hd + i];
                    }
                }
            }
            var attnOut = Linear(o, w.Wo, dim, null);
            Add(h, attnOut);

            x = Norm(h, w.FfnNorm);
            var gate = Linear(x, w.WGate, _c.FfDim, null);
            var up = Linear(x, w.WUp, _c.FfDim, null);
            for (int t = 0; t < n; t++)
                for (int i = 0; i < _c.FfDim; i++)
                {
                    double z = gate[t, i];
                    gate[t, i] = z / (1 + Math.Exp(-z)) * up[t, i];
                }
            Add(h, Linear(gate, w.WDown, dim, null));
        }
        if (!withLogits) return null;
        return Linear(Norm(h, _w.OutputNorm), _w.Output, _c.VocabSize, null);
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

    private double[,] Norm(double[,] h, float[] weight)
    {
        int n = h.GetLength(0), dim = h.GetLength(1);
        var y = new double[n, dim];
        for (int t = 0; t < n; t++)
        {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += h[t, i] * h[t, i];
            double r = 1.0 / Math.Sqrt(ss / dim + _c.RmsEps);
            for (int i = 0; i < dim; i++) y[t, i] = weight[i] * h[t, i] * r;
        }
        return y;
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

    /// <summary>RoPE at position t for row t; pair i is (2i, 2i+1) or (i, i + d/2) depending on the style.</summary>
    private void Rope(double[,] x, int heads)
    {
        int hd = _c.HeadDim, half = hd / 2;
        for (int t = 0; t < x.GetLength(0); t++)
            for (int head = 0; head < heads; head++)
                for (int i = 0; i < half; i++)
                {
                    double angle = t * Math.Pow(_c.RopeTheta, -(2.0 * i) / hd);
                    (int a, int b) = _c.Rope == RopeStyle.AdjacentPairs ? (2 * i, 2 * i + 1) : (i, i + half);
                    a += head * hd; b += head * hd;
                    double xa = x[t, a], xb = x[t, b];
                    x[t, a] = xa * Math.Cos(angle) - xb * Math.Sin(angle);
                    x[t, b] = xa * Math.Sin(angle) + xb * Math.Cos(angle);
                }
    }
}
