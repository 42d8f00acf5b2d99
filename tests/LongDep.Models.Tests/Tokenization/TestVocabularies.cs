using System.Text;
using System.Text.Json;
using Google.Protobuf;
using LongDep.Models.Tokenization;

namespace LongDep.Models.Tests.Tokenization;

/// <summary>
/// Small vocabularies built by hand, with every expected split worked out in the tests' comments, plus writers
/// for the Hugging Face files (tokenizer.json, tokenizer.model) that describe the same vocabularies.
/// </summary>
internal static class TestVocabularies
{
    public const char Mark = '\u2581';

    // ---- SentencePiece-style vocabulary -------------------------------------------------------------------
    // 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then normal pieces. Merged pieces have scores -1, -2, ...
    // so that the order of merges is fixed: the highest score merges first.
    public const int Unk = 0, Bos = 1, Eos = 2, ByteBase = 3;
    public const int Space = 259, H = 260, E = 261, L = 262, O = 263, W = 264, R = 265, D = 266;
    public const int LL = 267, SpH = 268, SpW = 269, OR = 270, LLO = 271, SpHE = 272, SpHELLO = 273, SpWOR = 274, LD = 275, SpWORLD = 276, HE = 277, EL = 278;
    public const int UserTool = 279;

    public static readonly (string Piece, float Score)[] NormalPieces =
    [
        ($"{Mark}", -100), ("h", -101), ("e", -102), ("l", -103), ("o", -104), ("w", -105), ("r", -106), ("d", -107),
        ("ll", -1), ($"{Mark}h", -2), ($"{Mark}w", -3), ("or", -4), ("llo", -5), ($"{Mark}he", -6), ($"{Mark}hello", -7),
        ($"{Mark}wor", -8), ("ld", -9), ($"{Mark}world", -10), ("he", -20), ("el", -15),
    ];

    public static int BytePieceId(byte b) => ByteBase + b;

    /// <summary>The SentencePiece vocabulary as GGUF arrays; <paramref name="withUserDefined"/> adds "&lt;tool&gt;" (type 4) as id 279.</summary>
    public static GgufVocabulary SentencePieceGguf(bool? addSpacePrefix = true, bool withUserDefined = false, bool withTypes = true)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var scores = new List<float> { 0, 0, 0 };
        var types = new List<int> { 2, 3, 3 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            scores.Add(0);
            types.Add(6);
        }
        foreach (var (piece, score) in NormalPieces)
        {
            tokens.Add(piece);
            scores.Add(score);
            types.Add(1);
        }
        if (withUserDefined)
        {
            tokens.Add("<tool>");
            scores.Add(0);
            types.Add(4);
        }
        return new GgufVocabulary("llama", tokens.ToArray(), scores.ToArray(), withTypes ? types.ToArray() : null, null,
            BosId: Bos, EosId: Eos, UnkId: Unk, AddSpacePrefix: addSpacePrefix, Pre: null);
    }

    /// <summary>
    /// Hugging Face merges for a SentencePiece vocabulary, made the way its converters make them: every piece of two
    /// or more characters, highest score first, split at every point where both halves are pieces.
    /// </summary>
    public static List<string> MergesFromScores(GgufVocabulary v)
    {
        var known = new HashSet<string>(v.Tokens);
        var merges = new List<string>();
        var order = Enumerable.Range(0, v.Tokens.Length)
            .Where(i => v.TokenTypes![i] == 1 && v.Tokens[i].Length > 1)
            .OrderByDescending(i => v.Scores![i]);
        foreach (int i in order)
        {
            string piece = v.Tokens[i];
            for (int cut = 1; cut < piece.Length; cut++)
            {
                if (known.Contains(piece[..cut]) && known.Contains(piece[cut..])) merges.Add($"{piece[..cut]} {piece[cut..]}");
            }
        }
        return merges;
    }

    /// <summary>tokenizer.json for the SentencePiece vocabulary, in the legacy Llama layout (Prepend + Replace normalizers)
    /// or the newer one (Metaspace pre-tokenizer, prepend_scheme "first").</summary>
    public static string SentencePieceTokenizerJson(bool metaspace, bool byteFallback = true)
    {
        var v = SentencePieceGguf();
        var vocab = new Dictionary<string, int>();
        for (int i = 0; i < v.Tokens.Length; i++) vocab[v.Tokens[i]] = i;
        object? normalizer = metaspace ? null : new
        {
            type = "Sequence",
            normalizers = new object[]
            {
                new { type = "Prepend", prepend = $"{Mark}" },
                new { type = "Replace", pattern = new { String = " " }, content = $"{Mark}" },
            },
        };
        object? preTokenizer = metaspace ? new { type = "Metaspace", replacement = $"{Mark}", prepend_scheme = "first", split = false } : null;
        var json = new
        {
            version = "1.0",
            added_tokens = new object[]
            {
                new { id = 0, content = "<unk>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
                new { id = 1, content = "<s>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
                new { id = 2, content = "</s>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
            },
            normalizer,
            pre_tokenizer = preTokenizer,
            post_processor = (object?)null,
            decoder = new
            {
                type = "Sequence",
                decoders = new object[]
                {
                    new { type = "Replace", pattern = new { String = $"{Mark}" }, content = " " },
                    new { type = "ByteFallback" },
                    new { type = "Fuse" },
                    new { type = "Strip", content = " ", start = 1, stop = 0 },
                },
            },
            model = new
            {
                type = "BPE",
                dropout = (object?)null,
                unk_token = "<unk>",
                continuing_subword_prefix = (string?)null,
                end_of_word_suffix = (string?)null,
                fuse_unk = true,
                byte_fallback = byteFallback,
                vocab,
                merges = MergesFromScores(v),
            },
        };
        return JsonSerializer.Serialize(json);
    }

    /// <summary>
    /// tokenizer.model for the SentencePiece vocabulary, written field by field with the numbers of
    /// sentencepiece_model.proto (independently of the library code under test).
    /// </summary>
    public static byte[] SentencePieceModelFile(int modelType = 2)
    {
        var v = SentencePieceGguf();
        var pieces = new MemoryStream();
        var output = new CodedOutputStream(pieces);
        for (int i = 0; i < v.Tokens.Length; i++)
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(Message(o =>
            {
                o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString(v.Tokens[i]);
                o.WriteTag(2, WireFormat.WireType.Fixed32); o.WriteFloat(v.Scores![i]);
                o.WriteTag(3, WireFormat.WireType.Varint); o.WriteEnum(v.TokenTypes![i]);
            }));
        }
        output.WriteTag(2, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(Message(o =>
        {
            o.WriteTag(3, WireFormat.WireType.Varint); o.WriteEnum(modelType);  // model_type
            o.WriteTag(4, WireFormat.WireType.Varint); o.WriteInt32(v.Tokens.Length); // vocab_size
            o.WriteTag(35, WireFormat.WireType.Varint); o.WriteBool(true);       // byte_fallback
            o.WriteTag(40, WireFormat.WireType.Varint); o.WriteInt32(Unk);
            o.WriteTag(41, WireFormat.WireType.Varint); o.WriteInt32(Bos);
            o.WriteTag(42, WireFormat.WireType.Varint); o.WriteInt32(Eos);
            o.WriteTag(99, WireFormat.WireType.Varint); o.WriteInt32(7);         // a field the reader must skip
        }));
        output.WriteTag(3, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(Message(o =>
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString("identity");
            o.WriteTag(3, WireFormat.WireType.Varint); o.WriteBool(true);   // add_dummy_prefix
            o.WriteTag(4, WireFormat.WireType.Varint); o.WriteBool(false);  // remove_extra_whitespaces
            o.WriteTag(5, WireFormat.WireType.Varint); o.WriteBool(true);   // escape_whitespaces
        }));
        output.Flush();
        return pieces.ToArray();
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        var memory = new MemoryStream();
        var output = new CodedOutputStream(memory);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(memory.ToArray());
    }

    // ---- Byte-level vocabulary ----------------------------------------------------------------------------

    /// <summary>GPT-2's byte alphabet, written out here from its definition (printable Latin-1 bytes stand for
    /// themselves, the others take U+0100, U+0101, ... in byte order).</summary>
    public static readonly char[] ByteChar = BuildByteChars();

    private static char[] BuildByteChars()
    {
        var chars = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            chars[b] = printable ? (char)b : (char)(0x100 + extra++);
        }
        return chars;
    }

    // Ids 0..255 are the bytes (id = byte value), then the merged tokens in merge order.
    public const int BHe = 256, BLl = 257, BHell = 258, BHello = 259, BSpW = 260, BOr = 261, BSpWor = 262, BLd = 263, BSpWorld = 264, BNlNl = 265, BEot = 266, BSpHello = 267, BLo = 268;

    public static readonly string[] ByteLevelMerges =
    [
        "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ċ Ċ", "Ġ hello",
    ];

    public static GgufVocabulary ByteLevelGguf(string? pre = null)
    {
        var tokens = new List<string>();
        for (int b = 0; b < 256; b++) tokens.Add(ByteChar[b].ToString());
        tokens.AddRange(["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "ĊĊ", "<|endoftext|>", "Ġhello", "lo"]);
        var types = Enumerable.Repeat(1, tokens.Count).ToArray();
        types[BEot] = 3;
        return new GgufVocabulary("gpt2", tokens.ToArray(), null, types, ByteLevelMerges,
            BosId: BEot, EosId: BEot, UnkId: null, AddSpacePrefix: null, Pre: pre);
    }

    /// <summary>tokenizer.json for the byte-level vocabulary; &lt;|endoftext|&gt; is an added special token outside
    /// model.vocab (as Qwen2 has it). With a <paramref name="splitRegex"/>, a Split step precedes ByteLevel(use_regex false).</summary>
    public static string ByteLevelTokenizerJson(string? splitRegex = null, bool ignoreMerges = false)
    {
        var v = ByteLevelGguf();
        var vocab = new Dictionary<string, int>();
        for (int i = 0; i < v.Tokens.Length; i++)
        {
            if (i != BEot) vocab[v.Tokens[i]] = i;
        }
        object preTokenizer = splitRegex is null
            ? new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true }
            : new
            {
                type = "Sequence",
                pretokenizers = new object[]
                {
                    new { type = "Split", pattern = new { Regex = splitRegex }, behavior = "Isolated", invert = false },
                    new { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
                },
            };
        var json = new
        {
            version = "1.0",
            added_tokens = new object[]
            {
                new { id = BEot, content = "<|endoftext|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
            },
            normalizer = (object?)null,
            pre_tokenizer = preTokenizer,
            post_processor = (object?)null,
            decoder = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = true, use_regex = true },
            model = new
            {
                type = "BPE",
                unk_token = (string?)null,
                fuse_unk = false,
                byte_fallback = false,
                ignore_merges = ignoreMerges,
                vocab,
                // The newer layout: each merge as a pair.
                merges = v.Merges!.Select(m => m.Split(' ')).ToArray(),
            },
        };
        return JsonSerializer.Serialize(json);
    }

    /// <summary>A fresh empty temp folder, removed by <see cref="TempFolder.Dispose"/>.</summary>
    public sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("longdep-tok-").FullName;

        public string Write(string name, string text)
        {
            string p = System.IO.Path.Combine(Path, name);
            File.WriteAllText(p, text, new UTF8Encoding(false));
            return p;
        }

        public string Write(string name, byte[] bytes)
        {
            string p = System.IO.Path.Combine(Path, name);
            File.WriteAllBytes(p, bytes);
            return p;
        }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
