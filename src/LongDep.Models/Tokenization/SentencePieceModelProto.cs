using Google.Protobuf;

namespace LongDep.Models.Tokenization;

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> (google/sentencepiece, src/sentencepiece_model.proto) that
/// tokenization depends on. Field numbers used: ModelProto.pieces = 1, trainer_spec = 2, normalizer_spec = 3;
/// SentencePiece.piece = 1, score = 2, type = 3; TrainerSpec.model_type = 3, treat_whitespace_as_suffix = 24,
/// byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42; NormalizerSpec.name = 1, precompiled_charsmap = 2,
/// add_dummy_prefix = 3, remove_extra_whitespaces = 4, escape_whitespaces = 5. Other fields are skipped.
/// </summary>
internal sealed class SentencePieceModelProto
{
    public const int ModelTypeUnigram = 1, ModelTypeBpe = 2, ModelTypeWord = 3, ModelTypeChar = 4;

    public required string[] Pieces { get; init; }
    public required float[] Scores { get; init; }
    public required TokenKind[] Kinds { get; init; }
    public int ModelType { get; init; } = ModelTypeUnigram;     // proto default
    public bool ByteFallback { get; init; }
    public bool TreatWhitespaceAsSuffix { get; init; }
    public int UnkId { get; init; }                              // proto defaults: 0, 1, 2; -1 = none
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public string NormalizerName { get; init; } = "";
    public bool HasPrecompiledCharsmap { get; init; }
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    public static string ModelTypeName(int type) => type switch
    {
        ModelTypeUnigram => "unigram",
        ModelTypeBpe => "BPE",
        ModelTypeWord => "word",
        ModelTypeChar => "char",
        _ => $"unknown type {type}",
    };

    /// <summary>Reads a serialized ModelProto (a <c>tokenizer.model</c> file); unknown fields are skipped.</summary>
    public static SentencePieceModelProto Parse(byte[] data, string source)
    {
        try
        {
            return ParseCore(data, source);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ModelFormatException(source, $"not a valid SentencePiece model (protobuf error: {e.Message})", e);
        }
    }

    private static SentencePieceModelProto ParseCore(byte[] data, string source)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var kinds = new List<TokenKind>();
        int modelType = ModelTypeUnigram, unk = 0, bos = 1, eos = 2;
        bool byteFallback = false, suffix = false, dummy = true, removeExtra = true, escape = true, charsmap = false;
        string normalizerName = "";

        var input = new CodedInputStream(data);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                {
                    var piece = new CodedInputStream(input.ReadBytes().ToByteArray());
                    string text = "";
                    float score = 0;
                    int type = (int)TokenKind.Normal;
                    uint t;
                    while ((t = piece.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(t))
                        {
                            case 1: text = piece.ReadString(); break;
                            case 2: score = piece.ReadFloat(); break;
                            case 3: type = piece.ReadEnum(); break;
                            default: piece.SkipLastField(); break;
                        }
                    }
                    pieces.Add(text);
                    scores.Add(score);
                    kinds.Add(TokenKinds.FromCode(type, source, pieces.Count - 1));
                    if (pieces.Count > 1 << 24)
                        throw new ModelFormatException(source, "more than 16777216 pieces; this is not a tokenizer model");
                    break;
                }
                case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                {
                    var spec = new CodedInputStream(input.ReadBytes().ToByteArray());
                    uint t;
                    while ((t = spec.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(t))
                        {
                            case 3: modelType = spec.ReadEnum(); break;
                            case 24: suffix = spec.ReadBool(); break;
                            case 35: byteFallback = spec.ReadBool(); break;
                            case 40: unk = spec.ReadInt32(); break;
                            case 41: bos = spec.ReadInt32(); break;
                            case 42: eos = spec.ReadInt32(); break;
                            default: spec.SkipLastField(); break;
                        }
                    }
                    break;
                }
                case 3 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                {
                    var spec = new CodedInputStream(input.ReadBytes().ToByteArray());
                    uint t;
                    while ((t = spec.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(t))
                        {
                            case 1: normalizerName = spec.ReadString(); break;
                            case 2: charsmap = spec.ReadBytes().Length > 0; break;
                            case 3: dummy = spec.ReadBool(); break;
                            case 4: removeExtra = spec.ReadBool(); break;
                            case 5: escape = spec.ReadBool(); break;
                            default: spec.SkipLastField(); break;
                        }
                    }
                    break;
                }
                default:
                    input.SkipLastField();
                    break;
            }
        }

        return new SentencePieceModelProto
        {
            Pieces = pieces.ToArray(),
            Scores = scores.ToArray(),
            Kinds = kinds.ToArray(),
            ModelType = modelType,
            ByteFallback = byteFallback,
            TreatWhitespaceAsSuffix = suffix,
            UnkId = unk,
            BosId = bos,
            EosId = eos,
            NormalizerName = normalizerName,
            HasPrecompiledCharsmap = charsmap,
            AddDummyPrefix = dummy,
            RemoveExtraWhitespaces = removeExtra,
            EscapeWhitespaces = escape,
        };
    }
}
