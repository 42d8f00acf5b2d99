using System.Text;
using LongDep.Models.Tokenization;

namespace LongDep.Models.Synthetic;

/// <summary>
/// A made-up language for demos and benchmarks: pronounceable words, a SentencePiece-style vocabulary that spells
/// them (every prefix of "▁word" is a piece, plus the 256 byte-fallback pieces), and documents with or without
/// long-range structure. Deterministic for a seed.
/// </summary>
public static class SyntheticText
{
    private static readonly string[] Onsets = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u", "ai", "ou"];

    /// <summary><paramref name="count"/> distinct pronounceable words.</summary>
    public static string[] Words(int count, long seed = 1)
    {
        var rng = new Random((int)(seed ^ (seed >> 32)));
        var set = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<string>(count);
        while (list.Count < count)
        {
            var sb = new StringBuilder();
            int syllables = 1 + rng.Next(3);
            for (int s = 0; s < syllables; s++) sb.Append(Onsets[rng.Next(Onsets.Length)]).Append(Vowels[rng.Next(Vowels.Length)]);
            if (set.Add(sb.ToString())) list.Add(sb.ToString());
        }
        return list.ToArray();
    }

    /// <summary>
    /// A "llama" (SentencePiece BPE) vocabulary of exactly <paramref name="size"/> pieces spelling <paramref name="words"/>:
    /// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte pieces, single letters, punctuation, then word prefixes; padded with
    /// further made-up words' prefixes when the words do not fill it.
    /// </summary>
    public static GgufVocabulary Vocabulary(int size, IEnumerable<string> words, long seed = 2)
    {
        if (size < 300) throw new ArgumentOutOfRangeException(nameof(size), size, "a synthetic vocabulary needs at least 300 pieces");
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { 2, 3, 3 };
        var scores = new List<float> { 0, 0, 0 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(6);
            scores.Add(0);
        }
        var seen = new HashSet<string>(tokens, StringComparer.Ordinal);
        void Add(string piece)
        {
            if (tokens.Count < size && seen.Add(piece))
            {
                tokens.Add(piece);
                types.Add(1);
                scores.Add(-tokens.Count); // earlier (shorter, commoner) pieces merge first
            }
        }
        Add("▁");
        foreach (char c in "abcdefghijklmnopqrstuvwxyz.,;:!?'-0123456789") Add(c.ToString());
        foreach (char c in ".,;:!?") Add("▁" + c);
        IEnumerable<string> More()
        {
            foreach (var w in words) yield return w;
            for (long k = 0; ; k++)
                foreach (var w in Words(512, seed + k)) yield return w;
        }
        foreach (var w in More())
        {
            if (tokens.Count >= size) break;
            string piece = "▁" + w;
            for (int len = 2; len <= piece.Length; len++) Add(piece[..len]);
        }
        return new GgufVocabulary("llama", tokens.ToArray(), scores.ToArray(), types.ToArray(), null, 1, 2, 0, true, null);
    }

    /// <summary>
    /// A document of about <paramref name="words"/> words. With <paramref name="longRange"/>, a set of topic words and
    /// whole sentences recur throughout (distant context helps); without, every sentence is drawn afresh.
    /// </summary>
    public static string Document(string[] vocabularyWords, int words, bool longRange, long seed)
    {
        var rng = new Random((int)(seed * 7919 % int.MaxValue));
        var topic = Enumerable.Range(0, 12).Select(_ => vocabularyWords[rng.Next(vocabularyWords.Length)]).ToArray();
        var remembered = new List<string>();
        var sb = new StringBuilder();
        int written = 0;
        while (written < words)
        {
            string sentence;
            if (longRange && remembered.Count > 3 && rng.NextDouble() < 0.3)
            {
                sentence = remembered[rng.Next(remembered.Count)];
            }
            else
            {
                int n = 6 + rng.Next(10);
                var parts = new string[n];
                for (int k = 0; k < n; k++)
                    parts[k] = longRange && rng.NextDouble() < 0.35 ? topic[rng.Next(topic.Length)] : vocabularyWords[rng.Next(vocabularyWords.Length)];
                parts[0] = char.ToUpperInvariant(parts[0][0]) + parts[0][1..];
                sentence = string.Join(' ', parts) + ".";
                if (longRange) remembered.Add(sentence);
            }
            if (sb.Length > 0) sb.Append(' ');
            sb.Append(sentence);
            written += sentence.Count(c => c == ' ') + 1;
        }
        return sb.ToString();
    }
}
