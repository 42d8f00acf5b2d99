using LongDep.Models;

namespace LongDep.Cuda.Twins;

/// <summary>Twin of embedding.cu: out[r, :] = table[tokens[r], :] (a NaN row for a token outside [0, vocab)).</summary>
public static class EmbeddingTwin
{
    public static void Gather(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, Span<float> output, int rows, int dim, int vocab)
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
            table.Slice(token * dim, dim).CopyTo(dst);
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
}

/// <summary>Twin of rope.cu: rotary embedding in place, angle = position * theta^(-2i/headDim) in float64.</summary>
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
        int headDim, int rowStride, RopeStyle style)
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
                    float c = (float)Math.Cos(angle), s = (float)Math.Sin(angle);
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

/// <summary>Twins of elementwise.cu and swiglu.cu.</summary>
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
}
