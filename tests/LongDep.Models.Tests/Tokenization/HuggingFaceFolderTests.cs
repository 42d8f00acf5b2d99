using NUnit.Framework;
using LongDep.Models.Tokenization;
using static LongDep.Models.Tests.Tokenization.TestVocabularies;

namespace LongDep.Models.Tests.Tokenization;

public class HuggingFaceFolderTests
{
    private static readonly string[] SentencePieceTexts =
    [
        "hello world", "hello\nworld", "héllo wörld 😀", "  two  spaces ", "<s> stays text", "日本語", "a", "",
    ];

    private static readonly string[] ByteLevelTexts =
    [
        "hello world", " hello world", "hello\n\nworld", "Hello, World!\r\n", "emoji 😀🎉\tend", "日本語テキスト", "lo 12345", "<|endoftext|>", "",
    ];

    [Test]
    public void Legacy_llama_tokenizer_json_matches_the_gguf_route()
    {
        var gguf = TokenizerFactory.FromGguf(SentencePieceGguf());
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", SentencePieceTokenizerJson(metaspace: false));
        var hf = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            Assert.That(hf.Kind, Does.StartWith("SentencePiece-style BPE (tokenizer.json, byte fallback"));
            Assert.That(hf.VocabSize, Is.EqualTo(gguf.VocabSize));
            Assert.That(hf.Encode("hello world", false), Is.EqualTo(new[] { SpHELLO, SpWORLD }));
            foreach (string text in SentencePieceTexts.Append(" leading space"))
            {
                int[] ids = hf.Encode(text, false);
                Assert.That(ids, Is.EqualTo(gguf.Encode(text, false)), text);
                Assert.That(hf.Decode(ids), Is.EqualTo(text), text);
            }
        });
    }

    [Test]
    public void Metaspace_tokenizer_json_matches_except_before_a_leading_space()
    {
        var gguf = TokenizerFactory.FromGguf(SentencePieceGguf());
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", SentencePieceTokenizerJson(metaspace: true));
        var hf = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            foreach (string text in SentencePieceTexts.Where(t => !t.StartsWith(' ')))
                Assert.That(hf.Encode(text, false), Is.EqualTo(gguf.Encode(text, false)), text);
            // Metaspace adds '▁' only when the text does not start with one: " hello" -> "▁hello",
            // where SentencePiece's dummy prefix gives "▁▁hello".
            Assert.That(hf.Encode(" hello", false), Is.EqualTo(new[] { SpHELLO }));
            Assert.That(gguf.Encode(" hello", false), Is.EqualTo(new[] { Space, SpHELLO }));
        });
    }

    [Test]
    public void Without_byte_fallback_a_run_of_unknown_characters_is_one_unknown_token()
    {
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", SentencePieceTokenizerJson(metaspace: false, byteFallback: false));
        var hf = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            // "▁é😀hello": é and 😀 are not pieces; fuse_unk makes them one <unk>; "hello" merges to [he][llo].
            Assert.That(hf.Encode("é😀hello", false), Is.EqualTo(new[] { Space, Unk, HE, LLO }));
            // The first piece is the dummy-prefix mark, which decoding drops.
            Assert.That(hf.Decode([Space, Unk, HE, LLO]), Is.EqualTo("\uFFFDhello"));
        });
    }

    [Test]
    public void Tokenizer_model_matches_the_gguf_route()
    {
        var gguf = TokenizerFactory.FromGguf(SentencePieceGguf());
        using var folder = new TempFolder();
        folder.Write("tokenizer.model", SentencePieceModelFile());
        var hf = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            Assert.That(hf.Kind, Does.StartWith("SentencePiece BPE (tokenizer.model"));
            Assert.That(hf.VocabSize, Is.EqualTo(gguf.VocabSize));
            Assert.That(hf.BosId, Is.EqualTo(Bos));
            Assert.That(hf.EosId, Is.EqualTo(Eos));
            foreach (string text in SentencePieceTexts.Append(" leading space"))
            {
                Assert.That(hf.Encode(text, true), Is.EqualTo(gguf.Encode(text, true)), text);
                Assert.That(hf.Decode(hf.Encode(text, false)), Is.EqualTo(text), text);
            }
        });
    }

    [Test]
    public void Byte_level_tokenizer_json_matches_the_gguf_route()
    {
        var gguf = TokenizerFactory.FromGguf(ByteLevelGguf());
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", ByteLevelTokenizerJson());
        folder.Write("tokenizer_config.json", """{"bos_token": null, "eos_token": "<|endoftext|>"}""");
        folder.Write("config.json", $$"""{"bos_token_id": {{BEot}}, "eos_token_id": [{{BEot}}, 7]}""");
        var hf = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            Assert.That(hf.Kind, Does.StartWith("byte-level BPE (tokenizer.json"));
            Assert.That(hf.VocabSize, Is.EqualTo(gguf.VocabSize));
            Assert.That(hf.BosId, Is.EqualTo(BEot), "bos_token null in tokenizer_config.json: config.json's id");
            Assert.That(hf.EosId, Is.EqualTo(BEot));
            foreach (string text in ByteLevelTexts)
            {
                int[] ids = hf.Encode(text, false);
                Assert.That(ids, Is.EqualTo(gguf.Encode(text, false)), text);
                Assert.That(hf.Decode(ids), Is.EqualTo(text), text);
            }
        });
    }

    [Test]
    public void Split_regex_and_ignore_merges_match_the_gguf_flavours()
    {
        using var qwenFolder = new TempFolder();
        qwenFolder.Write("tokenizer.json", ByteLevelTokenizerJson(splitRegex: QwenPattern));
        using var llamaFolder = new TempFolder();
        llamaFolder.Write("tokenizer.json", ByteLevelTokenizerJson(splitRegex: Llama3Pattern, ignoreMerges: true));
        var qwenHf = TokenizerFactory.FromHuggingFaceFolder(qwenFolder.Path);
        var llamaHf = TokenizerFactory.FromHuggingFaceFolder(llamaFolder.Path);
        var qwenGguf = TokenizerFactory.FromGguf(ByteLevelGguf("qwen2"));
        var llamaGguf = TokenizerFactory.FromGguf(ByteLevelGguf("llama-bpe"));
        Assert.Multiple(() =>
        {
            Assert.That(qwenHf.Encode("hello\n\nworld", false), Is.EqualTo(new[] { BHello, BNlNl, 'w', BOr, BLd }));
            Assert.That(llamaHf.Encode("lo", false), Is.EqualTo(new[] { BLo }));
            foreach (string text in ByteLevelTexts)
            {
                Assert.That(qwenHf.Encode(text, false), Is.EqualTo(qwenGguf.Encode(text, false)), text);
                Assert.That(llamaHf.Encode(text, false), Is.EqualTo(llamaGguf.Encode(text, false)), text);
            }
        });
    }

    // The regexes as the models' tokenizer.json files spell them (written out here, not taken from the code under test).
    private const string QwenPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    [Test]
    public void Tokenizer_json_is_preferred_and_unsupported_json_falls_back_to_tokenizer_model()
    {
        using var folder = new TempFolder();
        folder.Write("tokenizer.model", SentencePieceModelFile());
        folder.Write("tokenizer.json", """{"model": {"type": "Unigram", "vocab": []}}""");
        var tokenizer = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.Kind, Does.Contain("tokenizer.model"));
            Assert.That(tokenizer.Kind, Does.Contain("Unigram"));
            Assert.That(tokenizer.Encode("hello world", false), Is.EqualTo(new[] { SpHELLO, SpWORLD }));
        });

        folder.Write("tokenizer.json", SentencePieceTokenizerJson(metaspace: false));
        Assert.That(TokenizerFactory.FromHuggingFaceFolder(folder.Path).Kind, Does.Contain("tokenizer.json"));
    }

    [Test]
    public void Special_tokens_are_named_by_tokenizer_config()
    {
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", SentencePieceTokenizerJson(metaspace: false));
        folder.Write("tokenizer_config.json", """{"bos_token": {"content": "</s>"}, "eos_token": "<s>"}""");
        var tokenizer = TokenizerFactory.FromHuggingFaceFolder(folder.Path);
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.BosId, Is.EqualTo(Eos));
            Assert.That(tokenizer.EosId, Is.EqualTo(Bos));
            Assert.That(tokenizer.Encode("hello", true), Is.EqualTo(new[] { Eos, SpHELLO }));
        });
    }
}
