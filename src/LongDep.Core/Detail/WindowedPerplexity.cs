namespace LongDep.Core.Detail;

/// <summary>
/// A language model's per-token negative log-likelihood of one sequence: the backend seam of <c>longdep ppl</c>
/// (the CPU forward, or a GPU one).
/// </summary>
public interface ISequenceNll
{
    /// <summary>
    /// nll[t] = −ln p(tokens[t] | tokens[0..t)) for t = 1 .. n−1, in float64; nll[0] is NaN (the first token has no
    /// context). The result has <c>tokens.Length</c> elements; the sequence starts at position 0.
    /// </summary>
    double[] TokenNll(ReadOnlySpan<int> tokens);
}

/// <summary>The mean perplexity at one context window.</summary>
/// <param name="Window">w, in tokens.</param>
/// <param name="Samples">Samples with at least w tokens (the mean's count).</param>
/// <param name="Skipped">Samples shorter than w, left out at this window.</param>
/// <param name="MeanPerplexity">Mean over samples of exp(mean NLL of tokens 2..w); NaN when no sample reached w.</param>
public sealed record WindowPerplexity(int Window, int Samples, int Skipped, double MeanPerplexity);

/// <summary>
/// Perplexity by context window as LADM's Table 2 reports it ("each sample is truncated to the corresponding context
/// window size", "the average PPL"): for window w a sample's perplexity is exp of the mean NLL of tokens 2..w of its
/// first w tokens (w − 1 predictions, the first token unscored), and the window's value is the plain mean of those
/// per-sample perplexities over the samples of at least w tokens; shorter samples are skipped and counted.
/// The paper does not say whether it averages perplexities or NLLs; this follows the per-sample reading.
/// Because the model is causal, one run over the first max-window tokens of a sample gives every shorter window too.
/// </summary>
public sealed class WindowedPerplexity
{
    private readonly int[] _windows;
    private readonly double[] _sum;
    private readonly int[] _count;
    private readonly int[] _skipped;

    /// <summary>Evaluates at <paramref name="windows"/> (each at least 2 tokens, no repeats; kept in ascending order).</summary>
    public WindowedPerplexity(IEnumerable<int> windows)
    {
        ArgumentNullException.ThrowIfNull(windows);
        _windows = windows.ToArray();
        if (_windows.Length == 0) throw new ArgumentException("give at least one window", nameof(windows));
        Array.Sort(_windows);
        for (int k = 0; k < _windows.Length; k++)
        {
            if (_windows[k] < 2) throw new ArgumentOutOfRangeException(nameof(windows), _windows[k], "a window needs at least 2 tokens (one prediction)");
            if (k > 0 && _windows[k] == _windows[k - 1]) throw new ArgumentException($"window {_windows[k]} is given twice", nameof(windows));
        }
        _sum = new double[_windows.Length];
        _count = new int[_windows.Length];
        _skipped = new int[_windows.Length];
    }

    /// <summary>The windows, ascending.</summary>
    public IReadOnlyList<int> Windows => _windows;

    /// <summary>Samples added.</summary>
    public int SamplesSeen { get; private set; }

    /// <summary>Tokens to run for a sample of <paramref name="length"/> tokens: the largest window it reaches, or 0.</summary>
    public int TokensNeeded(int length)
    {
        int need = 0;
        foreach (int w in _windows) if (w <= length) need = w;
        return need;
    }

    /// <summary>exp(mean of nll[1..w−1]): the perplexity of the first <paramref name="window"/> tokens, from nll as <see cref="ISequenceNll"/> gives it.</summary>
    public static double SamplePerplexity(ReadOnlySpan<double> nll, int window)
    {
        if (window < 2 || window > nll.Length)
            throw new ArgumentOutOfRangeException(nameof(window), window, $"expected 2..{nll.Length} (the NLLs given)");
        double sum = 0;
        for (int t = 1; t < window; t++) sum += nll[t];
        return Math.Exp(sum / (window - 1));
    }

    /// <summary>Adds one sample: runs <paramref name="model"/> once over its first <see cref="TokensNeeded"/> tokens.</summary>
    /// <returns>The sample's perplexity at each window it reaches (NaN at the others).</returns>
    public double[] Add(ReadOnlySpan<int> tokens, ISequenceNll model)
    {
        ArgumentNullException.ThrowIfNull(model);
        int need = TokensNeeded(tokens.Length);
        double[] nll = need == 0 ? [] : model.TokenNll(tokens[..need]);
        if (nll.Length != need)
            throw new InvalidOperationException($"the model returned {nll.Length} NLL values for {need} tokens; an ISequenceNll returns one per token");
        return AddNll(tokens.Length, nll);
    }

    /// <summary>Adds one sample of <paramref name="length"/> tokens whose NLLs over its first tokens are <paramref name="nll"/>.</summary>
    public double[] AddNll(int length, ReadOnlySpan<double> nll)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var perSample = new double[_windows.Length];
        for (int k = 0; k < _windows.Length; k++)
        {
            int w = _windows[k];
            if (length < w)
            {
                _skipped[k]++;
                perSample[k] = double.NaN;
                continue;
            }
            perSample[k] = SamplePerplexity(nll, w);
            _sum[k] += perSample[k];
            _count[k]++;
        }
        SamplesSeen++;
        return perSample;
    }

    /// <summary>The mean perplexity, sample count and skip count of each window, ascending.</summary>
    public IReadOnlyList<WindowPerplexity> Results() =>
        _windows.Select((w, k) => new WindowPerplexity(w, _count[k], _skipped[k], _count[k] == 0 ? double.NaN : _sum[k] / _count[k])).ToArray();
}
