using NUnit.Framework;
using LongDep.Models.Tokenization;
using static LongDep.Models.Tests.Tokenization.TestVocabularies;

namespace LongDep.Models.Tests.Tokenization;

public class ByteLevelGgufTests
{
    private static readonly ITextTokenizer Gpt2 = TokenizerFactory.FromGguf(ByteLevelGguf());
    private static readonly ITextTokenizer Qwen2 = TokenizerFactory.FromGguf(ByteLevelGguf("qwen2"));
    private static readonly ITextTokenizer Llama3 = TokenizerFactory.FromGguf(ByteLevelGguf("llama-bpe"));

    private static int B(char c) => c; // single-byte characters have id = byte value

    [Test]
    public void Describes_the_vocabulary()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Gpt2.VocabSize, Is.EqualTo(269));
            Assert.That(Gpt2.BosId, Is.EqualTo(BEot));
            Assert.That(Gpt2.Kind, Does.StartWith("gpt2 (byte-level BPE"));
            Assert.That(Qwen2.Kind, Does.Contain("qwen2"));
            Assert.That(TokenizerFactory.FromGguf(ByteLevelGguf("mystery")).Kind, Does.Contain("'mystery' not recognised"));
        });
    }

    [Test]
    public void Hello_world_merges_by_rank()
    {
        // Words "hello", " world". hello: h e(0) -> l l(1) -> he ll(2) -> hell o(3).
        // Ġworld: Ġ w(4) -> o r(5) -> Ġw or(6) -> l d(7) -> Ġwor ld(8).
        Assert.That(Gpt2.Encode("hello world", false), Is.EqualTo(new[] { BHello, BSpWorld }));
        // " hello": the word "Ġhello" merges to hello first, then Ġ hello(10).
        Assert.That(Gpt2.Encode(" hello world", false), Is.EqualTo(new[] { BSpHello, BSpWorld }));
    }

    [Test]
    public void Newlines_follow_the_pre_tokenizer_regex()
    {
        Assert.Multiple(() =>
        {
            // GPT-2: \s+(?!\S) takes the first '\n', \s+ the second: two words, no Ċ Ċ merge.
            // "world" without Ġ: o r, l d; "w" stays.
            Assert.That(Gpt2.Encode("hello\n\nworld", false), Is.EqualTo(new[] { BHello, B('\n'), B('\n'), B('w'), BOr, BLd }));
            // Qwen2/Llama 3: \s*[\r\n]+ keeps "\n\n" together, so Ċ Ċ(9) merges.
            Assert.That(Qwen2.Encode("hello\n\nworld", false), Is.EqualTo(new[] { BHello, BNlNl, B('w'), BOr, BLd }));
            Assert.That(Llama3.Encode("hello\n\nworld", false), Is.EqualTo(new[] { BHello, BNlNl, B('w'), BOr, BLd }));
        });
    }

    [Test]
    public void Llama3_looks_up_whole_words_before_merging()
    {
        // "lo" is a token but no merge makes it; Llama 3 (ignore_merges) takes the whole word.
        Assert.Multiple(() =>
        {
            Assert.That(Gpt2.Encode("lo", false), Is.EqualTo(new[] { B('l'), B('o') }));
            Assert.That(Llama3.Encode("lo", false), Is.EqualTo(new[] { BLo }));
        });
    }

    [Test]
    public void Llama3_groups_digits_by_three()
    {
        // Llama 3 cuts digit runs into groups of up to three: "12345" -> "123", "45". With "123" a token,
        // the whole-word lookup finds the first group; "45" has no token and stays two bytes.
        var v = ByteLevelGguf("llama-bpe");
        var tokens = v.Tokens.Append("123").ToArray();
        var types = v.TokenTypes!.Append(1).ToArray();
        var llama3 = TokenizerFactory.FromGguf(v with { Tokens = tokens, TokenTypes = types });
        Assert.That(llama3.Encode("12345", false), Is.EqualTo(new[] { 269, B('4'), B('5') }));
    }

    [Test]
    public void Emoji_and_other_scripts_are_their_utf8_bytes()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Gpt2.Encode("😀", false), Is.EqualTo(new[] { 0xF0, 0x9F, 0x98, 0x80 }));
            Assert.That(Gpt2.Encode("é", false), Is.EqualTo(new[] { 0xC3, 0xA9 }));
        });
    }

    [Test]
    public void Control_tokens_in_text_stay_text_and_bos_is_added_only_on_request()
    {
        int[] ids = Gpt2.Encode("<|endoftext|>", false);
        Assert.Multiple(() =>
        {
            Assert.That(ids, Does.Not.Contain(BEot));
            Assert.That(ids, Is.EqualTo("<|endoftext|>".Select(c => (int)c).ToArray()));
            Assert.That(Gpt2.Encode("hello", true), Is.EqualTo(new[] { BEot, BHello }));
            Assert.That(Gpt2.Decode([BEot, BHello, BEot]), Is.EqualTo("hello"));
        });
    }

    [Test]
    public void User_defined_tokens_are_matched_in_text_and_decode_as_written()
    {
        var v = ByteLevelGguf();
        var tokenizer = TokenizerFactory.FromGguf(v with { Tokens = [.. v.Tokens, "<tool>"], TokenTypes = [.. v.TokenTypes!, 4] });
        int tool = v.Tokens.Length;
        // "a", <tool>, " hello": the text on each side is pre-tokenized on its own.
        Assert.That(tokenizer.Encode("a<tool> hello", false), Is.EqualTo(new[] { B('a'), tool, BSpHello }));
        Assert.That(tokenizer.Decode([B('a'), tool, BSpHello]), Is.EqualTo("a<tool> hello"));
    }

    [TestCase("hello world")]
    [TestCase("Hello, World!\n\n")]
    [TestCase("emoji 😀🎉 and tabs\tend")]
    [TestCase("日本語テキスト")]
    [TestCase("  leading and trailing  ")]
    [TestCase("line1\r\nline2\n")]
    [TestCase("it's 12345 o'clock")]
    public void Decode_inverts_encode(string text)
    {
        Assert.Multiple(() =>
        {
            Assert.That(Gpt2.Decode(Gpt2.Encode(text, false)), Is.EqualTo(text));
            Assert.That(Qwen2.Decode(Qwen2.Encode(text, false)), Is.EqualTo(text));
            Assert.That(Llama3.Decode(Llama3.Encode(text, true)), Is.EqualTo(text));
        });
    }
}
