using LongDep.Models;

namespace LongDep.Cuda.Twins;

/// <summary>
/// Twin of embedding.cu: out[r, :] = table[tokens[r], :] · scale (a NaN row for a token outside [0, vocab)), and the
/// learned position rows added to it.
/// </summary>
public static class EmbeddingTwin
{
    public static void Gather(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, Span<float> output, int rows, int dim, int vocab,
        float scale = 1f)
    {
        for (int r = 0; r < rows; r++)
        {
            var dst = output.Slice(r * dim, dim);
            int token = tokens[r];
            if (token < 0 || token >= vocab)
            {
                dst.Fill(float.NaN);
                continue;
            }
            var src = table.Slice(token * dim, dim);
            for (int i = 0; i < dim; i++) dst[i] = src[i] * scale;
        }
    }

    /// <summary>out[r, :] += table[offset + positions[r], :] (a NaN row for a table row outside [0, tableRows)).</summary>
    public static void AddPositions(ReadOnlySpan<int> positions, ReadOnlySpan<float> table, Span<float> output, int rows, int dim,
        int offset, int tableRows)
    {
        for (int r = 0; r < rows; r++)
        {
            var dst = output.Slice(r * dim, dim);
            int at = offset + positions[r];
            if (positions[r] < 0 || at >= tableRows)
            {
                dst.Fill(float.NaN);
                continue;
            }
            var src = table.Slice(at * dim, dim);
            for (int i = 0; i < dim; i++) dst[i] += src[i];
        }
    }
}

/// <summary>Twin of rmsnorm.cu: y[r, i] = w[i] * x[r, i] / sqrt(mean(x[r, :]^2) + eps).</summary>
public static class RmsNormTwin
{
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int rows, int n, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            double squares = 0;
            foreach (float v in xr) squares += (double)v * v;
            double inv = 1.0 / Math.Sqrt(squares / n + eps);
            for (int i = 0; i < n; i++) yr[i] = (float)(w[i] * (xr[i] * inv));
        }
    }

    /// <summary>rmsnorm_add_f32: h[r, i] += w[i] · x[r, i] / sqrt(mean(x[r, :]²) + eps).</summary>
    public static void ApplyAdd(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> h, int rows, int n, float eps)
    {
        var y = new float[n];
        for (int r = 0; r < rows; r++)
        {
            Apply(x.Slice(r * n, n), w, y, 1, n, eps);
            var hr = h.Slice(r * n, n);
            for (int i = 0; i < n; i++) hr[i] += y[i];
        }
    }

    /// <summary>
    /// qk_rmsnorm on one tensor: each of the <paramref name="heads"/> head vectors v of every row (at <paramref name="stride"/>)
    /// becomes w · u / sqrt(mean(u²) + eps), u = v · <paramref name="preScale"/> (rounded to float32, as the kernel does).
    /// </summary>
    public static void HeadNorm(Span<float> x, ReadOnlySpan<float> w, int rows, int heads, int headDim, int stride, float eps,
        float preScale = 1f)
    {
        var u = new float[headDim];
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice(r * stride + h * headDim, headDim);
                for (int i = 0; i < headDim; i++) u[i] = v[i] * preScale;
                Apply(u, w, v, 1, headDim, eps);
            }
    }
}

/// <summary>Twin of layernorm.cu: y[r, i] = (x[r, i] − mean) / sqrt(var + eps) · w[i] + b[i], mean and (biased) variance in float64.</summary>
public static class LayerNormTwin
{
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int n, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            double mean = 0;
            foreach (float v in xr) mean += v;
            mean /= n;
            double variance = 0;
            foreach (float v in xr) variance += (v - mean) * (v - mean);
            double inv = 1.0 / Math.Sqrt(variance / n + eps);
            for (int i = 0; i < n; i++) yr[i] = (float)((xr[i] - mean) * inv * w[i] + b[i]);
        }
    }
}

/// <summary>
/// Twin of rope.cu: rotary embedding in place, angle = position · invFreq[i] in float64 (invFreq: θ^(−2i/d), or a layer's
/// scaled frequencies from <see cref="RopeFrequencies"/>), cos and sin times the attention factor <c>scale</c>.
/// </summary>
public static class RopeTwin
{
    /// <summary>inv_freq[i] = theta^(-2i/headDim), i &lt; headDim/2, in float64 (uploaded as the kernel's table).</summary>
    public static double[] InverseFrequencies(float theta, int headDim)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"head dimension {headDim} must be positive and even");
        var result = new double[headDim / 2];
        for (int i = 0; i < result.Length; i++) result[i] = Math.Pow(theta, -2.0 * i / headDim);
        return result;
    }

    /// <summary>The kernel's style argument: 0 = adjacent pairs, 1 = halves.</summary>
    public static int StyleCode(RopeStyle style) => style switch
    {
        RopeStyle.AdjacentPairs => 0,
        RopeStyle.Halves => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(style), style, "unknown RoPE style"),
    };

    public static void Apply(Span<float> x, ReadOnlySpan<int> positions, ReadOnlySpan<double> invFreq, int rows, int heads,
        int headDim, int rowStride, RopeStyle style, float scale = 1f)
    {
        int half = headDim / 2;
        for (int r = 0; r < rows; r++)
        {
            for (int h = 0; h < heads; h++)
            {
                var head = x.Slice(r * rowStride + h * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    double angle = positions[r] * invFreq[i];
                    float c = (float)(Math.Cos(angle) * scale), s = (float)(Math.Sin(angle) * scale);
                    int i0 = style == RopeStyle.AdjacentPairs ? 2 * i : i;
                    int i1 = style == RopeStyle.AdjacentPairs ? 2 * i + 1 : i + half;
                    float a = head[i0], b = head[i1];
                    head[i0] = a * c - b * s;
                    head[i1] = a * s + b * c;
                }
            }
        }
    }
}

/// <summary>Twins of elementwise.cu and swiglu.cu (the gated activations).</summary>
public static class ElementwiseTwin
{
    /// <summary>x[r, j] += bias[j].</summary>
    public static void AddBias(Span<float> x, ReadOnlySpan<float> bias, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) x[r * n + j] += bias[j];
    }

    /// <summary>out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g), before rounding to the output type (gate and up
    /// are the kernel's inputs as floats: already in its type).</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> output, long n)
    {
        for (int i = 0; i < n; i++)
        {
            double g = gate[i];
            output[i] = (float)(g / (1.0 + Math.Exp(-g)) * up[i]);
        }
    }

    /// <summary>out[i] = gelu_tanh(gate[i]) · up[i], gelu_tanh(g) = ½ g (1 + tanh(√(2/π) (g + 0.044715 g³))), in float64.</summary>
    public static void GeGluTanh(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> output, long n)
    {
        double beta = Math.Sqrt(2 / Math.PI);
        for (int i = 0; i < n; i++)
        {
            double g = gate[i];
            output[i] = (float)(0.5 * g * (1 + Math.Tanh(beta * (g + 0.044715 * g * g * g))) * up[i]);
        }
    }

    /// <summary>bias_relu: out[r, j] = max(x[r, j] + bias[j], 0) (no bias when <paramref name="bias"/> is empty), before rounding to the output type.</summary>
    public static void BiasRelu(ReadOnlySpan<float> x, ReadOnlySpan<float> bias, Span<float> output, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                float v = bias.IsEmpty ? x[r * n + j] : x[r * n + j] + bias[j];
                output[r * n + j] = v > 0 ? v : 0f;
            }
    }
}
