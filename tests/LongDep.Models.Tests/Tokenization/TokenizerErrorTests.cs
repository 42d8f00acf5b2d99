using NUnit.Framework;
using LongDep.Models.Tokenization;
using static LongDep.Models.Tests.Tokenization.TestVocabularies;

namespace LongDep.Models.Tests.Tokenization;

public class TokenizerErrorTests
{
    [Test]
    public void Missing_folder_names_the_folder()
    {
        string path = Path.Combine(Path.GetTempPath(), "longdep-no-such-folder-" + Guid.NewGuid());
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(path));
        Assert.That(e!.Message, Does.Contain(path).And.Contain("not found"));
    }

    [Test]
    public void Empty_folder_lists_the_files_looked_for()
    {
        using var folder = new TempFolder();
        folder.Write("config.json", "{}");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(folder.Path));
        Assert.That(e!.Message, Does.Contain("tokenizer.json").And.Contain("tokenizer.model"));
    }

    [Test]
    public void Unsupported_gguf_model_is_named()
    {
        var v = SentencePieceGguf() with { Model = "bert" };
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(v));
        Assert.That(e!.Message, Does.Contain("'bert'").And.Contain("llama").And.Contain("gpt2"));
    }

    [Test]
    public void Unsupported_tokenizer_json_model_is_named()
    {
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", """{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(folder.Path));
        Assert.That(e!.Message, Does.Contain("WordPiece").And.Contain("tokenizer.json"));
    }

    [Test]
    public void Unigram_sentencepiece_model_is_named()
    {
        using var folder = new TempFolder();
        folder.Write("tokenizer.model", SentencePieceModelFile(modelType: 1));
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(folder.Path));
        Assert.That(e!.Message, Does.Contain("unigram").And.Contain("tokenizer.model"));
    }

    [Test]
    public void Garbage_files_are_reported_with_their_name()
    {
        using var folder = new TempFolder();
        folder.Write("tokenizer.json", "{ not json");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(folder.Path));
        Assert.That(e!.Message, Does.Contain("tokenizer.json").And.Contain("JSON"));

        using var other = new TempFolder();
        other.Write("tokenizer.model", new byte[] { 0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01 });
        var e2 = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromHuggingFaceFolder(other.Path));
        Assert.That(e2!.Message, Does.Contain("tokenizer.model"));
    }

    [Test]
    public void Inconsistent_gguf_arrays_are_reported()
    {
        var v = SentencePieceGguf();
        Assert.Multiple(() =>
        {
            var noScores = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(v with { Scores = null }));
            Assert.That(noScores!.Message, Does.Contain("tokenizer.ggml.scores"));
            var shortTypes = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(v with { TokenTypes = [1, 2] }));
            Assert.That(shortTypes!.Message, Does.Contain("token_type").And.Contain("2 entries"));
            var badBos = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(v with { BosId = 99_999 }));
            Assert.That(badBos!.Message, Does.Contain("bos_token_id").And.Contain("99999"));
            var noMerges = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(ByteLevelGguf() with { Merges = null }));
            Assert.That(noMerges!.Message, Does.Contain("tokenizer.ggml.merges"));
            var badMerge = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(ByteLevelGguf() with { Merges = ["h e", "x y"] }));
            Assert.That(badMerge!.Message, Does.Contain("merges"));
        });
    }

    [Test]
    public void Broken_byte_fallback_run_is_reported()
    {
        var v = SentencePieceGguf();
        var tokens = (string[])v.Tokens.Clone();
        tokens[ByteBase + 0x41] = "A";
        var e = Assert.Throws<ModelFormatException>(() => TokenizerFactory.FromGguf(v with { Tokens = tokens }));
        Assert.That(e!.Message, Does.Contain("<0x41>"));
    }
}
