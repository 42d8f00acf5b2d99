using LongDep.Core.Probes;
using LongDep.Models;
using LongDep.Models.Cpu;

namespace LongDep.Cuda.Tests;

/// <summary>
/// A deliberately plain float64 Llama forward written for the tests, independent of the kernels' twins: full attention
/// matrices, RoPE as a complex rotation, and ProLong pairs run as the whole sequence chunk_j ++ chunk_i (no prefix
/// reuse), so that the CUDA path's batching, caching and fusion are checked against the definitions themselves.
/// </summary>
internal sealed class ReferenceModel(ModelWeights weights)
{
    private readonly ModelConfig c = weights.Config;

    /// <summary>Post-RoPE queries and keys of one layer: Q[t][h][d], K[t][g][d].</summary>
    internal sealed record LayerQk(double[][][] Q, double[][][] K);

    /// <summary>Runs the model; returns the final hidden states (after the output norm) and every layer's q/k.</summary>
    public (double[][] Final, List<LayerQk> Qk) Run(int[] tokens, int[] positions)
    {
        int T = tokens.Length;
        var h = new double[T][];
        for (int t = 0; t < T; t++)
            h[t] = weights.TokenEmbedding.ToFloat32().AsSpan(tokens[t] * c.Dim, c.Dim).ToArray().Select(v => (double)v).ToArray();
        var qk = new List<LayerQk>();
        foreach (var w in weights.Layers)
        {
            var q = new double[T][][];
            var k = new double[T][][];
            var v = new double[T][][];
            for (int t = 0; t < T; t++)
            {
                var x = RmsNorm(h[t], w.AttnNorm);
                q[t] = Heads(Add(MatVec(w.Wq.ToFloat32(), c.QDim, x), w.Bq), c.Heads);
                k[t] = Heads(Add(MatVec(w.Wk.ToFloat32(), c.KvDim, x), w.Bk), c.KvHeads);
                v[t] = Heads(Add(MatVec(w.Wv.ToFloat32(), c.KvDim, x), w.Bv), c.KvHeads);
                foreach (var head in q[t]) Rotate(head, positions[t]);
                foreach (var head in k[t]) Rotate(head, positions[t]);
            }
            qk.Add(new LayerQk(q, k));
            int group = c.Heads / c.KvHeads;
            for (int t = 0; t < T; t++)
            {
                var o = new double[c.QDim];
                for (int hd = 0; hd < c.Heads; hd++)
                {
                    var p = Softmax(Enumerable.Range(0, t + 1).Select(s => Dot(q[t][hd], k[s][hd / group]) / Math.Sqrt(c.HeadDim)).ToArray());
                    for (int s = 0; s <= t; s++)
                        for (int d = 0; d < c.HeadDim; d++) o[hd * c.HeadDim + d] += p[s] * v[s][hd / group][d];
                }
                var attn = MatVec(w.Wo.ToFloat32(), c.Dim, o);
                for (int i = 0; i < c.Dim; i++) h[t][i] += attn[i];
            }
            for (int t = 0; t < T; t++)
            {
                var x = RmsNorm(h[t], w.FfnNorm);
                var g = MatVec(w.WGate!.ToFloat32(), c.FfDim, x);
                var u = MatVec(w.WUp.ToFloat32(), c.FfDim, x);
                var a = new double[c.FfDim];
                for (int i = 0; i < c.FfDim; i++) a[i] = g[i] / (1 + Math.Exp(-g[i])) * u[i];
                var down = MatVec(w.WDown.ToFloat32(), c.Dim, a);
                for (int i = 0; i < c.Dim; i++) h[t][i] += down[i];
            }
        }
        var final = h.Select(row => RmsNorm(row, weights.OutputNorm!)).ToArray();
        return (final, qk);
    }

    /// <summary>−log p(tokens[t + 1] | tokens[..t]) for t in [from, to).</summary>
    public double[] NextTokenNll(double[][] final, int[] tokens, int from, int to)
    {
        var result = new double[to - from];
        for (int t = from; t < to; t++)
        {
            var logits = MatVec(weights.Output.ToFloat32(), c.VocabSize, final[t]);
            double max = logits.Max();
            double logSum = max + Math.Log(logits.Sum(z => Math.Exp(z - max)));
            result[t - from] = logSum - logits[tokens[t + 1]];
        }
        return result;
    }

    private double[] RmsNorm(double[] v, float[] w)
    {
        double ms = v.Sum(x => x * x) / v.Length;
        double inv = 1 / Math.Sqrt(ms + c.NormEps);
        return v.Select((x, i) => w[i] * x * inv).ToArray();
    }

    private static double[] MatVec(float[] m, int rows, double[] x)
    {
        int cols = x.Length;
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int i = 0; i < cols; i++) s += m[r * cols + i] * x[i];
            y[r] = s;
        }
        return y;
    }

    private static double[] Add(double[] x, float[]? b) => b is null ? x : x.Select((v, i) => v + b[i]).ToArray();

    private double[][] Heads(double[] x, int heads) =>
        Enumerable.Range(0, heads).Select(hd => x.AsSpan(hd * c.HeadDim, c.HeadDim).ToArray()).ToArray();

    /// <summary>Multiplies each rotated pair, as a complex number, by e^(i·pos·theta^(−2k/d)).</summary>
    private void Rotate(double[] head, int position)
    {
        int half = c.HeadDim / 2;
        for (int kk = 0; kk < half; kk++)
        {
            double angle = position * Math.Pow(c.RopeTheta, -2.0 * kk / c.HeadDim);
            var rotation = System.Numerics.Complex.FromPolarCoordinates(1, angle);
            int i0 = c.Rope == RopeStyle.AdjacentPairs ? 2 * kk : kk;
            int i1 = c.Rope == RopeStyle.AdjacentPairs ? 2 * kk + 1 : kk + half;
            var z = new System.Numerics.Complex(head[i0], head[i1]) * rotation;
            head[i0] = z.Real;
            head[i1] = z.Imaginary;
        }
    }

    internal static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    internal static double[] Softmax(double[] scores)
    {
        double max = scores.Max();
        var e = scores.Select(s => Math.Exp(s - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}

/// <summary>
/// The references whole GPU measurements are compared with in these tests: the float64 Llama forward above for models of
/// the Llama block it implements; the CPU probes for the other families (LongDep.Models.Tests checks the CPU forward of
/// every family against a float64 forward written from its published architecture).
/// </summary>
internal static class ReferenceProbes
{
    /// <summary>Whether <see cref="ReferenceModel"/> implements <paramref name="c"/>'s block.</summary>
    public static bool IsLlamaBlock(ModelConfig c) =>
        c.Norm == NormKind.Rms && c.NormPlacement == NormPlacement.Pre && c.FinalNorm && c.Positions == PositionKind.Rope
        && c.RopeScaling.Type == RopeScalingType.None && c.LocalRopeTheta is null && !c.OutputProjectionBias && !c.FeedForwardBias
        && !c.QkNorm && c.AttentionScale is null && !c.ScaleQueries && c.AttentionSoftCap is null && c.FinalSoftCap is null
        && !c.HasSlidingWindow && c.EmbedScale == 1f && c.FeedForward == FeedForwardKind.SwiGlu && !c.HasProjections;

    public static ILadmProbe Ladm(ModelWeights w) => IsLlamaBlock(w.Config) ? new ReferenceLadmProbe(w) : new CpuLadmProbe(new CpuForward(w));

    public static IProLongProbe ProLong(ModelWeights w) => IsLlamaBlock(w.Config) ? new ReferenceProLongProbe(w) : new CpuProLongProbe(new CpuForward(w));
}

/// <summary>LADM's PFS straight from SPEC §2 on the float64 reference forward (the probability matrix is materialized).</summary>
internal sealed class ReferenceLadmProbe(ModelWeights weights) : ILadmProbe
{
    public LadmMeasurement Measure(ReadOnlySpan<int> tokens, LadmSchedule schedule, CancellationToken cancellationToken = default)
    {
        var c = weights.Config;
        var ids = tokens.ToArray();
        var (_, qk) = new ReferenceModel(weights).Run(ids, Enumerable.Range(0, ids.Length).ToArray());
        int group = c.Heads / c.KvHeads;
        var pfs = new double[c.Layers][][];
        for (int layer = 0; layer < c.Layers; layer++)
        {
            var (q, k) = (qk[layer].Q, qk[layer].K);
            pfs[layer] = schedule.Spans.Select(span =>
            {
                var col = new double[span.Start];
                for (int h = 0; h < c.Heads; h++)
                    for (int t = span.Start; t < span.End; t++)
                    {
                        var p = ReferenceModel.Softmax(Enumerable.Range(0, span.Start)
                            .Select(s => ReferenceModel.Dot(q[t][h], k[s][h / group]) / Math.Sqrt(c.HeadDim)).ToArray());
                        for (int s = 0; s < span.Start; s++) col[s] += p[s] / c.Heads;
                    }
                return span.Intervals.Select(iv =>
                {
                    double sum = 0;
                    for (int s = span.Start - iv; s < span.End - iv; s++) sum += col[s];
                    return sum;
                }).ToArray();
            }).ToArray();
        }
        return new LadmMeasurement(schedule, pfs);
    }

    public void Dispose() { }
}

/// <summary>ProLong's perplexities straight from SPEC §3: each pair runs as the full sequence chunk_j ++ chunk_i.</summary>
internal sealed class ReferenceProLongProbe(ModelWeights weights) : IProLongProbe
{
    public ProLongMeasurement Measure(IReadOnlyList<int[]> chunks, IReadOnlyList<ChunkPair> pairs, CancellationToken cancellationToken = default)
    {
        var model = new ReferenceModel(weights);
        int l = chunks.Count > 0 ? chunks[0].Length : 0;
        var single = chunks.Select(chunk =>
        {
            var (final, _) = model.Run(chunk, Enumerable.Range(0, l).ToArray());
            return Math.Exp(model.NextTokenNll(final, chunk, 0, l - 1).Average());
        }).ToArray();
        var pair = pairs.Select(p =>
        {
            var sequence = chunks[p.J].Concat(chunks[p.I]).ToArray();
            var (final, _) = model.Run(sequence, Enumerable.Range(0, 2 * l).ToArray());
            return Math.Exp(model.NextTokenNll(final, sequence, l, 2 * l - 1).Average());
        }).ToArray();
        return new ProLongMeasurement(single, pairs, pair);
    }

    public void Dispose() { }
}
