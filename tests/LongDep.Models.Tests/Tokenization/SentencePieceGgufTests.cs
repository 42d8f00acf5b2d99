using NUnit.Framework;
using LongDep.Models.Tokenization;
using static LongDep.Models.Tests.Tokenization.TestVocabularies;

namespace LongDep.Models.Tests.Tokenization;

public class SentencePieceGgufTests
{
    private static readonly ITextTokenizer WithPrefix = TokenizerFactory.FromGguf(SentencePieceGguf(addSpacePrefix: true));
    private static readonly ITextTokenizer NoPrefix = TokenizerFactory.FromGguf(SentencePieceGguf(addSpacePrefix: false));

    [Test]
    public void Describes_the_vocabulary()
    {
        Assert.Multiple(() =>
        {
            Assert.That(WithPrefix.VocabSize, Is.EqualTo(3 + 256 + NormalPieces.Length));
            Assert.That(WithPrefix.BosId, Is.EqualTo(Bos));
            Assert.That(WithPrefix.EosId, Is.EqualTo(Eos));
            Assert.That(WithPrefix.Kind, Does.StartWith("llama (SentencePiece BPE"));
        });
    }

    [Test]
    public void Hello_world_merges_by_score()
    {
        // "▁hello▁world": ll(-1), ▁h(-2), ▁w(-3), or(-4), llo(-5), ▁he(-6), ▁hello(-7), ▁wor(-8), ld(-9), ▁world(-10).
        Assert.That(WithPrefix.Encode("hello world", addBos: false), Is.EqualTo(new[] { SpHELLO, SpWORLD }));
    }

    [Test]
    public void Equal_scores_merge_the_leftmost_pair_first()
    {
        // "▁lllll": l+l (ll, -1) at four places. Leftmost first: [▁][ll][l][l][l], the pair (2,3) is now stale,
        // then (3,4): [▁][ll][ll][l]. "lll", "llll" and "▁l" are not pieces, so nothing more merges.
        Assert.That(WithPrefix.Encode("lllll", false), Is.EqualTo(new[] { Space, LL, LL, L }));
    }

    [Test]
    public void Unused_pieces_are_split_back_into_their_parts()
    {
        // With ▁hello (273) unused, "▁he" + "llo" still merge into it, and the result is split back: [▁he][llo].
        var v = SentencePieceGguf();
        var types = (int[])v.TokenTypes!.Clone();
        types[SpHELLO] = 5;
        var tokenizer = TokenizerFactory.FromGguf(v with { TokenTypes = types });
        Assert.That(tokenizer.Encode("hello world", false), Is.EqualTo(new[] { SpHE, LLO, SpWORLD }));
    }

    [Test]
    public void Without_space_prefix_the_first_word_has_no_mark()
    {
        // "hello▁world": ll, ▁w, or, llo, ▁wor, ld, ▁world; then he(-20) joins h+e; "hello" is not a piece.
        // el(-15) was queued for e+l but l had already merged into ll: a stale pair.
        Assert.That(NoPrefix.Encode("hello world", addBos: false), Is.EqualTo(new[] { HE, LLO, SpWORLD }));
    }

    [Test]
    public void Leading_space_follows_add_space_prefix()
    {
        Assert.Multiple(() =>
        {
            // "▁▁hello": "▁▁" is not a piece, so the dummy prefix stays alone.
            Assert.That(WithPrefix.Encode(" hello", false), Is.EqualTo(new[] { Space, SpHELLO }));
            Assert.That(NoPrefix.Encode(" hello", false), Is.EqualTo(new[] { SpHELLO }));
            Assert.That(NoPrefix.Encode("hello", false), Is.EqualTo(new[] { HE, LLO }));
        });
    }

    [Test]
    public void Characters_outside_the_vocabulary_fall_back_to_bytes()
    {
        Assert.Multiple(() =>
        {
            // é = C3 A9 in UTF-8.
            Assert.That(WithPrefix.Encode("é", false), Is.EqualTo(new[] { Space, BytePieceId(0xC3), BytePieceId(0xA9) }));
            // '\n' = 0x0A; "world" without a mark: or, ld, and "w" stays.
            Assert.That(WithPrefix.Encode("hello\nworld", false),
                Is.EqualTo(new[] { SpHELLO, BytePieceId(0x0A), W, OR, LD }));
            // 😀 = F0 9F 98 80 (a surrogate pair in UTF-16).
            Assert.That(NoPrefix.Encode("😀", false),
                Is.EqualTo(new[] { BytePieceId(0xF0), BytePieceId(0x9F), BytePieceId(0x98), BytePieceId(0x80) }));
        });
    }

    [Test]
    public void Control_tokens_in_text_stay_text()
    {
        int[] ids = WithPrefix.Encode("<s>hello</s>", false);
        Assert.Multiple(() =>
        {
            Assert.That(ids, Does.Not.Contain(Bos));
            Assert.That(ids, Does.Not.Contain(Eos));
            Assert.That(ids[0..4], Is.EqualTo(new[] { Space, BytePieceId((byte)'<'), BytePieceId((byte)'s'), BytePieceId((byte)'>') }));
            Assert.That(WithPrefix.Decode(ids), Is.EqualTo("<s>hello</s>"));
        });
    }

    [Test]
    public void AddBos_puts_exactly_one_bos_first_and_no_eos()
    {
        int[] plain = WithPrefix.Encode("hello world", addBos: false);
        int[] withBos = WithPrefix.Encode("hello world", addBos: true);
        Assert.Multiple(() =>
        {
            Assert.That(withBos, Is.EqualTo(new[] { Bos }.Concat(plain)));
            Assert.That(withBos.Count(id => id == Bos), Is.EqualTo(1));
            Assert.That(withBos, Does.Not.Contain(Eos));
            Assert.That(WithPrefix.Encode("", addBos: true), Is.EqualTo(new[] { Bos }));
            Assert.That(WithPrefix.Encode("", addBos: false), Is.Empty);
        });
    }

    [Test]
    public void AddBos_without_a_bos_token_is_an_error()
    {
        var tokenizer = TokenizerFactory.FromGguf(SentencePieceGguf() with { BosId = null });
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.BosId, Is.Null);
            Assert.That(tokenizer.Encode("hello", false), Is.EqualTo(new[] { SpHELLO }));
            var e = Assert.Throws<InvalidOperationException>(() => tokenizer.Encode("hello", true));
            Assert.That(e!.Message, Does.Contain("no BOS"));
        });
    }

    [TestCase("hello world")]
    [TestCase(" hello  world ")]
    [TestCase("héllo wörld 😀 🎉")]
    [TestCase("日本語のテキスト")]
    [TestCase("a\tb\nc\r\nd")]
    [TestCase("   ")]
    [TestCase("▁ literal mark")]
    public void Decode_inverts_encode(string text)
    {
        Assert.Multiple(() =>
        {
            Assert.That(WithPrefix.Decode(WithPrefix.Encode(text, false)), Is.EqualTo(text.Replace('▁', ' ')));
            Assert.That(NoPrefix.Decode(NoPrefix.Encode(text, false)), Is.EqualTo(text.Replace('▁', ' ')));
            Assert.That(WithPrefix.Decode(WithPrefix.Encode(text, true)), Is.EqualTo(text.Replace('▁', ' ')));
        });
    }

    [Test]
    public void Types_absent_are_inferred_from_the_ids_and_byte_pieces()
    {
        var untyped = TokenizerFactory.FromGguf(SentencePieceGguf(withTypes: false));
        foreach (string text in new[] { "hello world", "é\n😀", " hello" })
            Assert.That(untyped.Encode(text, true), Is.EqualTo(WithPrefix.Encode(text, true)), text);
        Assert.That(untyped.Decode(untyped.Encode("é😀 x", true)), Is.EqualTo("é😀 x"));
    }

    [Test]
    public void User_defined_tokens_are_matched_whole()
    {
        var tokenizer = TokenizerFactory.FromGguf(SentencePieceGguf(withUserDefined: true));
        // "▁hello" + <tool> + "world" (no mark: the dummy prefix goes only at the start).
        Assert.That(tokenizer.Encode("hello<tool>world", false), Is.EqualTo(new[] { SpHELLO, UserTool, W, OR, LD }));
        Assert.That(tokenizer.Decode([SpHELLO, UserTool, W, OR, LD]), Is.EqualTo("hello<tool>world"));
    }

    [Test]
    public void Decode_skips_control_tokens_and_marks_unknown()
    {
        Assert.Multiple(() =>
        {
            Assert.That(WithPrefix.Decode([Bos, SpHELLO, SpWORLD, Eos]), Is.EqualTo("hello world"));
            Assert.That(WithPrefix.Decode([SpHELLO, Unk]), Is.EqualTo("hello\uFFFD"));
            Assert.Throws<ArgumentOutOfRangeException>(() => WithPrefix.Decode([SpHELLO, 10_000]));
        });
    }
}
