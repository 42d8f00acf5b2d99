using NUnit.Framework;
using System.IO.Compression;
using System.Text.Json;
using LongDep.Models.Tokenization;
using static LongDep.Models.Tests.Tokenization.TestVocabularies;

namespace LongDep.Models.Tests.Tokenization;

/// <summary>GPT-2 style tokenizers from vocab.json + merges.txt, as OPT ships them.</summary>
public class Gpt2VocabFilesTests
{
    private static string Fixture(string name) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "Tokenization", "Gpt2Fixtures", name);

    private static string Json(object o) => JsonSerializer.Serialize(o);

    /// <summary>
    /// A hand-made vocabulary: '!'=0 e=1 h=2 l=3 o=4 Ġ=5 he=6 ll=7 hell=8 hello=9 Ġh=10, &lt;/s&gt;=11; merges in rank
    /// order h·e, l·l, he·ll, hell·o, Ġ·h.
    /// </summary>
    private static TempFolder HandMade(object? tokenizerConfig = null)
    {
        var folder = new TempFolder();
        string[] tokens = ["!", "e", "h", "l", "o", "Ġ", "he", "ll", "hell", "hello", "Ġh", "</s>"];
        folder.Write("vocab.json", Json(tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i)));
        folder.Write("merges.txt", "#version: 0.2\nh e\nl l\nhe ll\nhell o\nĠ h\n");
        folder.Write("tokenizer_config.json", Json(tokenizerConfig ?? new { bos_token = "</s>", eos_token = "</s>", add_prefix_space = false }));
        return folder;
    }

    [Test]
    public void HandWorkedBpe()
    {
        using var folder = HandMade();
        var tok = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.That(tok.Kind, Does.Contain("vocab.json + merges.txt"));
        // "hello" → h e l l o → (h·e, rank 0) he l l o → (l·l, rank 1) he ll o → (he·ll, 2) hell o → (hell·o, 3) hello.
        // " hello" is split off by the GPT-2 regex as "Ġhello": h·e (rank 0) beats Ġ·h (rank 4), so Ġ stays alone.
        Assert.That(tok.Encode("hello hello", false), Is.EqualTo(new[] { 9, 5, 9 }));
        // "hell!" → words "hell" and "!": h e l l → he ll → hell.
        Assert.That(tok.Encode("hell!", false), Is.EqualTo(new[] { 8, 0 }));
        // No merge joins o·h or Ġ·o.
        Assert.That(tok.Encode("oh o", false), Is.EqualTo(new[] { 4, 2, 5, 4 }));
        Assert.That(tok.Decode([9, 5, 9]), Is.EqualTo("hello hello"));
        Assert.That(tok.Decode([8, 11, 0]), Is.EqualTo("hell!"), "the control token </s> decodes to nothing");
    }

    [Test]
    public void PrefixSpaceAsTheSlowTokenizerAddsIt()
    {
        using var folder = HandMade(new { bos_token = "</s>", add_prefix_space = true });
        var tok = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        // " " + "hello" → "Ġhello" → Ġ, hello (as above).
        Assert.That(tok.Encode("hello", false), Is.EqualTo(new[] { 5, 9 }));
    }

    /// <summary>OPT's tokenizer files: bos = eos = unk = &lt;/s&gt; (id 2), pad &lt;pad&gt;, add_bos_token true.</summary>
    private static TempFolder OptLike()
    {
        var folder = new TempFolder();
        var vocab = new Dictionary<string, int> { ["<s>"] = 0, ["<pad>"] = 1, ["</s>"] = 2, ["<unk>"] = 3 };
        foreach (string t in new[] { "h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello", "!" }) vocab[t] = vocab.Count;
        folder.Write("vocab.json", Json(vocab));
        folder.Write("merges.txt", "#version: 0.2\nh e\nl l\nhe ll\nhell o\n");
        object Added(string s) => new { content = s, single_word = false, lstrip = false, rstrip = false, normalized = true, __type = "AddedToken" };
        folder.Write("tokenizer_config.json", Json(new
        {
            errors = "replace", unk_token = Added("</s>"), bos_token = Added("</s>"), eos_token = Added("</s>"), pad_token = Added("<pad>"),
            add_prefix_space = false, add_bos_token = true,
        }));
        folder.Write("special_tokens_map.json", Json(new { bos_token = "</s>", eos_token = "</s>", unk_token = "</s>", pad_token = "<pad>" }));
        folder.Write("config.json", Json(new { model_type = "opt", bos_token_id = 2, eos_token_id = 2, pad_token_id = 1 }));
        return folder;
    }

    [Test]
    public void OptsBosIsEndOfSentenceAndIsOnlyAddedWhenAsked()
    {
        // OPT's own tokenizer prepends </s> (add_bos_token); ProLong's run.py turns that off, and so does longdep by default.
        using var folder = OptLike();
        var tok = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.That(tok.BosId, Is.EqualTo(2));
        Assert.That(tok.EosId, Is.EqualTo(2));
        Assert.That(tok.VocabSize, Is.EqualTo(14));
        Assert.That(tok.Encode("hello hello!", false), Is.EqualTo(new[] { 12, 8, 12, 13 }));
        Assert.That(tok.Encode("hello hello!", true), Is.EqualTo(new[] { 2, 12, 8, 12, 13 }));
        Assert.That(tok.Decode([2, 12, 1]), Is.EqualTo("hello"), "</s> and <pad> are control tokens");
    }

    [Test]
    public void TheVocabFilesAgreeWithTheGgufRouteOfTheSameVocabulary()
    {
        var gguf = TokenizerFactory.FromGguf(ByteLevelGguf());
        using var folder = new TempFolder();
        var v = ByteLevelGguf();
        folder.Write("vocab.json", Json(v.Tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i)));
        folder.Write("merges.txt", "#version: 0.2\n" + string.Join("\n", v.Merges!) + "\n");
        folder.Write("special_tokens_map.json", Json(new { bos_token = "<|endoftext|>", eos_token = "<|endoftext|>" }));
        var hf = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.That(hf.BosId, Is.EqualTo(BEot));
        foreach (string text in new[] { "hello world", " hello world", "hello\n\nworld", "Hello, World!\r\n", "emoji 😀🎉\tend", "日本語テキスト", "lo 12345", "<|endoftext|>", "" })
        {
            Assert.That(hf.Encode(text, false), Is.EqualTo(gguf.Encode(text, false)), text);
            Assert.That(hf.Decode(hf.Encode(text, false)), Is.EqualTo(text), text);
        }
    }

    [Test]
    public void IdsMatchTransformersGpt2TokenizerOnRealTexts()
    {
        // GPT-2's vocabulary (cut to 12,000 merges) and the ids transformers' slow GPT2Tokenizer gave for 300
        // paragraphs of /usr/share/common-licenses and a few texts of our own (make_fixtures.py in Gpt2Fixtures).
        using var folder = new TempFolder();
        foreach (string name in new[] { "vocab.json", "merges.txt" })
        {
            using var gz = new GZipStream(File.OpenRead(Fixture(name + ".gz")), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            folder.Write(name, ms.ToArray());
        }
        foreach (string name in new[] { "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Fixture(name), Path.Combine(folder.Path, name));
        var tok = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.That(tok.BosId, Is.EqualTo(50256), "<|endoftext|> keeps GPT-2's id");

        using var expected = JsonDocument.Parse(new GZipStream(File.OpenRead(Fixture("expected.json.gz")), CompressionMode.Decompress));
        var cases = expected.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.That(cases, Has.Count.GreaterThan(300));
        int tokens = 0;
        var mismatches = new List<string>();
        foreach (var c in cases)
        {
            string text = c.GetProperty("text").GetString()!;
            string idsText = c.GetProperty("ids").GetString()!;
            int[] want = idsText.Length == 0 ? [] : idsText.Split(' ').Select(int.Parse).ToArray();
            int[] got = tok.Encode(text, false);
            tokens += want.Length;
            if (!got.SequenceEqual(want))
                mismatches.Add($"'{(text.Length > 50 ? text[..50] + "..." : text)}': got [{string.Join(' ', got.Take(12))}...], transformers [{string.Join(' ', want.Take(12))}...]");
            else if (tok.Decode(got) != text)
                mismatches.Add($"'{text}' does not decode back to itself");
        }
        TestContext.Out.WriteLine($"{cases.Count} texts, {tokens} tokens compared with {expected.RootElement.GetProperty("tokenizer")} of transformers {expected.RootElement.GetProperty("transformers")}");
        Assert.That(tokens, Is.GreaterThan(20000));
        Assert.That(mismatches, Is.Empty, string.Join("\n", mismatches.Take(5)));
    }

    [Test]
    public void AFolderWithOnlyVocabFilesGivesTheModelItsTokenizer()
    {
        using var folder = OptLike();
        var w = LongDep.Models.Tests.HuggingFace.TestModels.Weights(LongDep.Models.Tests.HuggingFace.TestModels.Config());
        LongDep.Models.HuggingFace.HuggingFaceModel.Save(folder.Path, w, TensorType.F32, format: LongDep.Models.HuggingFace.HfWeightsFormat.PyTorch);
        var loaded = ModelLoader.Load(folder.Path);
        Assert.That(loaded.Tokenizer, Is.Not.Null, loaded.TokenizerProblem);
        Assert.That(loaded.Tokenizer!.Kind, Does.Contain("vocab.json + merges.txt"));
        Assert.That(ModelLoader.Describe(folder.Path).Tokenizer!.BosId, Is.EqualTo(2));
    }

    private static IEnumerable<TestCaseData> Broken()
    {
        yield return new TestCaseData("vocab.json", "[1, 2]", "expected a JSON object").SetName("Gpt2Files_VocabNotObject");
        yield return new TestCaseData("vocab.json", "{\"a\": 0, \"b\": 0}", "id 0 is given to both").SetName("Gpt2Files_IdTwice");
        yield return new TestCaseData("vocab.json", "{\"a\": -1}", "expected an integer").SetName("Gpt2Files_NegativeId");
        yield return new TestCaseData("vocab.json", "{\"a\": 99999999}", "expected an integer").SetName("Gpt2Files_HugeId");
        yield return new TestCaseData("vocab.json", "{\"a\": 0, \"b\": 16000000}", "too sparse").SetName("Gpt2Files_Sparse");
        yield return new TestCaseData("vocab.json", "{\"a\": ", "not valid JSON").SetName("Gpt2Files_Truncated");
        yield return new TestCaseData("merges.txt", "#version: 0.2\nh e\nhe\n", "line 3").SetName("Gpt2Files_MergeWithoutSpace");
        yield return new TestCaseData("merges.txt", "#version: 0.2\nh  e\n", "line 2").SetName("Gpt2Files_MergeTwoSpaces");
        yield return new TestCaseData("tokenizer_config.json", "{\"bos_token\": \"<nope>\"}", "'<nope>' is not in the vocabulary").SetName("Gpt2Files_UnknownBos");
    }

    [TestCaseSource(nameof(Broken))]
    public void BrokenFilesAreRefusedWithAClearMessage(string file, string content, string expected)
    {
        using var folder = HandMade();
        string path = folder.Write(file, content);
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(folder.Path));
        Assert.That(e!.Message, Does.Contain(expected));
        Assert.That(e.Message, Does.Contain(path), "names the file");
    }
}
