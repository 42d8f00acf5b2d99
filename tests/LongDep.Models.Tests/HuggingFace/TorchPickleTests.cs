using NUnit.Framework;
using System.Buffers.Binary;
using System.Text;
using LongDep.Models.HuggingFace;

namespace LongDep.Models.Tests.HuggingFace;

/// <summary>Pickles assembled opcode by opcode, to show what the restricted unpickler accepts and what it refuses.</summary>
public class TorchPickleTests
{
    /// <summary>A tiny pickle assembler.</summary>
    public sealed class P
    {
        private readonly List<byte> _b = [];

        public P Op(params int[] bytes)
        {
            foreach (int b in bytes) _b.Add((byte)b);
            return this;
        }

        public P Proto(int v = 2) => Op(0x80, v);
        public P Mark() => Op('(');
        public P Global(string module, string name) => Op('c').Raw(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));
        public P Raw(byte[] bytes)
        {
            _b.AddRange(bytes);
            return this;
        }

        public P Str(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            var len = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(len, bytes.Length);
            return Op('X').Raw(len).Raw(bytes);
        }

        public P Int(long v)
        {
            if (v is >= 0 and < 256) return Op('K', (int)v);
            var b = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(b, v);
            return Op(0x8a, 8).Raw(b);
        }

        public P Ints(params long[] v)
        {
            Mark();
            foreach (long x in v) Int(x);
            return Op('t');
        }

        public P OrderedDict() => Global("collections", "OrderedDict").Op(')', 'R');

        /// <summary>('storage', torch.&lt;cls&gt;, key, 'cpu', numel) → BINPERSID.</summary>
        public P Storage(string key, long numel, string cls = "FloatStorage") =>
            Mark().Str("storage").Global("torch", cls).Str(key).Str("cpu").Int(numel).Op('t', 'Q');

        /// <summary>A _rebuild_tensor_v2 call on storage <paramref name="key"/>.</summary>
        public P Tensor(string key, long numel, long offset, long[] shape, long[] stride, string cls = "FloatStorage")
        {
            Global("torch._utils", "_rebuild_tensor_v2").Mark();
            Storage(key, numel, cls).Int(offset).Ints(shape).Ints(stride).Op(0x89);
            return OrderedDict().Op('t', 'R');
        }

        public byte[] Bytes => _b.ToArray();
    }

    private static IReadOnlyList<(string Name, TorchTensor Tensor)> Read(P p) => TorchPickle.ReadStateDict(p.Bytes, "test.pkl");

    private static string Refused(P p)
    {
        var e = Assert.Throws<ModelFormatException>(() => Read(p));
        Assert.That(e!.Message, Does.Not.Contain('\n'), "one line");
        Assert.That(e.Message, Does.StartWith("test.pkl: "), "names the file");
        return e.Message;
    }

    /// <summary>OrderedDict with w: f32 [2, 3] over storage '0' of 6 elements.</summary>
    private static P Valid() =>
        new P().Proto().OrderedDict().Mark().Str("w").Tensor("0", 6, 0, [2, 3], [3, 1]).Op('u', '.');

    [Test]
    public void AMinimalStateDictReads()
    {
        var t = Read(Valid());
        Assert.That(t, Has.Count.EqualTo(1));
        Assert.That(t[0].Name, Is.EqualTo("w"));
        Assert.That(t[0].Tensor.Shape, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(t[0].Tensor.Storage.Key, Is.EqualTo("0"));
        Assert.That(t[0].Tensor.Storage.Numel, Is.EqualTo(6));
        Assert.That(t[0].Tensor.IsContiguous);
    }

    [Test]
    public void ProtocolFourFramesMemoizeAndStackGlobalAreAccepted()
    {
        var p = new P().Proto(4).Op(0x95).Raw(BitConverter.GetBytes(10L))
            .Op(0x8c, "collections".Length).Raw("collections"u8.ToArray()).Op(0x94)
            .Op(0x8c, "OrderedDict".Length).Raw("OrderedDict"u8.ToArray()).Op(0x94).Op(0x93).Op(0x94).Op(')', 'R').Op(0x94).Op('0')
            .Op('}').Op(0x94)                                  // a plain dict as the state dict
            .Str("a").Tensor("k", 4, 0, [4], [1]).Op('s')
            .Str("b").Op('h', 3).Op('0')                       // BINGET the OrderedDict, then POP it (unused)
            .Tensor("k", 4, 1, [3], [1]).Op('s', '.');
        var t = Read(p);
        Assert.That(t.Select(x => x.Name), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(t[1].Tensor.Offset, Is.EqualTo(1));
        Assert.That(t[1].Tensor.Storage, Is.SameAs(t[0].Tensor.Storage), "one storage, named twice");
    }

    [Test]
    public void ParametersAndMetadataAreAccepted()
    {
        var p = new P().Proto().OrderedDict().Op('q', 0).Mark()
            .Str("p").Global("torch._utils", "_rebuild_parameter").Mark().Tensor("0", 2, 0, [2], [1]).Op(0x88).OrderedDict().Op('t', 'R')
            .Op('u')
            .Op('}').Str("_metadata").OrderedDict().Str("").Op('}').Str("version").Int(1).Op('s', 's', 's')
            .Op('b', '.');
        var t = Read(p);
        Assert.That(t.Single().Name, Is.EqualTo("p"));
    }

    private static IEnumerable<TestCaseData> Globals()
    {
        yield return new TestCaseData("os", "system").SetName("Refuses_os_system");
        yield return new TestCaseData("posix", "system").SetName("Refuses_posix_system");
        yield return new TestCaseData("builtins", "eval").SetName("Refuses_builtins_eval");
        yield return new TestCaseData("builtins", "getattr").SetName("Refuses_builtins_getattr");
        yield return new TestCaseData("subprocess", "Popen").SetName("Refuses_subprocess_Popen");
        yield return new TestCaseData("torch", "load").SetName("Refuses_torch_load");
        yield return new TestCaseData("torch._utils", "_rebuild_qtensor").SetName("Refuses_rebuild_qtensor");
        yield return new TestCaseData("numpy.core.multiarray", "_reconstruct").SetName("Refuses_numpy_reconstruct");
        yield return new TestCaseData("collections", "defaultdict").SetName("Refuses_defaultdict");
    }

    [TestCaseSource(nameof(Globals))]
    public void AnyOtherGlobalIsRefusedByName(string module, string name)
    {
        var p = new P().Proto().Global(module, name).Mark().Str("echo pwned").Op('t', 'R', '.');
        string msg = Refused(p);
        Assert.That(msg, Does.Contain($"'{module}.{name}'").And.Contain("refusing"));
        Assert.That(msg, Does.Contain("byte 2"), "where in data.pkl");
    }

    [Test]
    public void StackGlobalIsCheckedToo()
    {
        var p = new P().Proto(4).Str("builtins").Str("exec").Op(0x93).Mark().Str("print(1)").Op('t', 'R', '.');
        Assert.That(Refused(p), Does.Contain("'builtins.exec'"));
    }

    [Test]
    public void AnUnknownStorageTypeSaysHowToConvert()
    {
        var p = new P().Proto().OrderedDict().Mark().Str("q").Tensor("0", 4, 0, [4], [1], cls: "QInt8Storage").Op('u', '.');
        Assert.That(Refused(p), Does.Contain("'torch.QInt8Storage'").And.Contain("re-save"));
    }

    [Test]
    public void AKnownButUnreadableStorageTypeIsListedAsOther()
    {
        var p = new P().Proto().OrderedDict().Mark().Str("ids").Tensor("0", 4, 0, [4], [1], cls: "LongStorage").Op('u', '.');
        var t = Read(p).Single().Tensor;
        Assert.That(t.Storage.Type.Type, Is.EqualTo(TensorType.Other));
        Assert.That(t.Storage.Type.DtypeName, Is.EqualTo("I64"));
        Assert.That(t.Storage.ByteSize, Is.EqualTo(32));
    }

    private static IEnumerable<TestCaseData> Opcodes()
    {
        yield return new TestCaseData(new[] { (int)'i' }, "INST").SetName("Refuses_INST");
        yield return new TestCaseData(new[] { (int)'o' }, "OBJ").SetName("Refuses_OBJ");
        yield return new TestCaseData(new[] { 0x81 }, "NEWOBJ").SetName("Refuses_NEWOBJ");
        yield return new TestCaseData(new[] { 0x92 }, "NEWOBJ_EX").SetName("Refuses_NEWOBJ_EX");
        yield return new TestCaseData(new[] { 0x82, 1 }, "EXT1").SetName("Refuses_EXT1");
        yield return new TestCaseData(new[] { (int)'C', 1, 0 }, "SHORT_BINBYTES").SetName("Refuses_SHORT_BINBYTES");
        yield return new TestCaseData(new[] { (int)'U', 1, 0 }, "SHORT_BINSTRING").SetName("Refuses_SHORT_BINSTRING");
        yield return new TestCaseData(new[] { (int)'I', '1', '\n' }, "INT").SetName("Refuses_text_INT");
        yield return new TestCaseData(new[] { (int)'P', '1', '\n' }, "PERSID").SetName("Refuses_text_PERSID");
        yield return new TestCaseData(new[] { 0x8f }, "EMPTY_SET").SetName("Refuses_EMPTY_SET");
        yield return new TestCaseData(new[] { 0x97 }, "NEXT_BUFFER").SetName("Refuses_NEXT_BUFFER");
        yield return new TestCaseData(new[] { (int)'2' }, "DUP").SetName("Refuses_DUP");
        yield return new TestCaseData(new[] { 0xFF }, "0xFF").SetName("Refuses_unknown_opcode");
    }

    [TestCaseSource(nameof(Opcodes))]
    public void OpcodesAStateDictDoesNotUseAreRefused(int[] op, string name)
    {
        var p = new P().Proto().Op('N').Op(op).Op('.');
        Assert.That(Refused(p), Does.Contain(name).And.Contain("refusing"));
    }

    private static IEnumerable<TestCaseData> Malformed()
    {
        yield return new TestCaseData(new P(), "empty").SetName("Malformed_Empty");
        yield return new TestCaseData(new P().Op('N', '.'), "protocol").SetName("Malformed_NoProtocol");
        yield return new TestCaseData(new P().Proto(1).Op('N', '.'), "protocol 1").SetName("Malformed_Protocol1");
        yield return new TestCaseData(new P().Proto().OrderedDict(), "without a STOP").SetName("Malformed_NoStop");
        yield return new TestCaseData(new P().Proto().Op('N', 'N', '.'), "exactly one value").SetName("Malformed_TwoValuesAtStop");
        yield return new TestCaseData(new P().Proto().Op('X', 0xFF, 0xFF, 0xFF, 0xFF).Raw([1, 2]), "runs past the end").SetName("Malformed_HugeString");
        yield return new TestCaseData(new P().Proto().Op(0x8d).Raw(BitConverter.GetBytes(ulong.MaxValue)), "runs past the end").SetName("Malformed_HugeString8");
        yield return new TestCaseData(new P().Proto().Op(0x8b).Raw(BitConverter.GetBytes(int.MaxValue)), "at most 8 bytes").SetName("Malformed_HugeLong4");
        yield return new TestCaseData(new P().Proto().Op(0x8a, 9).Raw(new byte[9]), "at most 8 bytes").SetName("Malformed_NineByteLong1");
        yield return new TestCaseData(new P().Proto().Op('h', 7), "memo entry 7").SetName("Malformed_GetBeforePut");
        yield return new TestCaseData(new P().Proto().Op('R'), "stack is empty").SetName("Malformed_ReduceOnEmptyStack");
        yield return new TestCaseData(new P().Proto().Op('t'), "MARK").SetName("Malformed_TupleWithoutMark");
        yield return new TestCaseData(new P().Proto().Op(0x95).Raw(BitConverter.GetBytes(1L << 40)), "FRAME").SetName("Malformed_FramePastEnd");
        yield return new TestCaseData(new P().Proto().Op('c').Raw("collections"u8.ToArray()), "newline").SetName("Malformed_GlobalWithoutNewline");
        yield return new TestCaseData(new P().Proto().Op('c').Raw(Encoding.ASCII.GetBytes(new string('a', 300) + "\nb\n")), "longer than 256 bytes").SetName("Malformed_GlobalNameTooLong");
        yield return new TestCaseData(new P().Proto().Op('X', 2, 0, 0, 0, 0xC3, 0x28).Op('.'), "UTF-8").SetName("Malformed_BadUtf8");
        yield return new TestCaseData(new P().Proto().Op(']').Op('N', 'N').Op('s'), "expected a dict").SetName("Malformed_SetItemOnList");
        yield return new TestCaseData(new P().Proto().Op('}').Mark().Op('N').Op('u'), "odd number").SetName("Malformed_OddSetItems");
        yield return new TestCaseData(new P().Proto().Op('}').Op(']', 'N', 's'), "only strings and integers").SetName("Malformed_ListAsKey");
    }

    [TestCaseSource(nameof(Malformed))]
    public void MalformedPicklesFailWithOneLine(P p, string expected) => Assert.That(Refused(p), Does.Contain(expected));

    [Test]
    public void DeepNestingIsRefused()
    {
        var p = new P().Proto();
        for (int i = 0; i < 100; i++) p.Op(']');
        for (int i = 0; i < 99; i++) p.Op('a');
        p.Op('.');
        Assert.That(Refused(p), Does.Contain("nested more than 64 deep"));

        var tuples = new P().Proto().Op('N');
        for (int i = 0; i < 100; i++) tuples.Op(0x85); // TUPLE1 around the previous value
        tuples.Op('.');
        Assert.That(Refused(tuples), Does.Contain("nested more than 64 deep"));
    }

    [Test]
    public void TooManyMarksAreRefused()
    {
        var p = new P().Proto();
        for (int i = 0; i < 300; i++) p.Mark();
        Assert.That(Refused(p), Does.Contain("nested marks"));
    }

    [Test]
    public void NoPickleCanBuildACycle()
    {
        // l = []; l.append(l)
        var self = new P().Proto().Op(']', 'q', 0, 'h', 0, 'a', '.');
        Assert.That(Refused(self), Does.Contain("contain itself"));
        // a = []; b = []; a.append(b); b.append(a)  — b is frozen once inside a.
        var loop = new P().Proto().Op(']', 'q', 0).Op(']', 'q', 1).Op('a').Op('h', 1, 'h', 0, 'a', '.');
        Assert.That(Refused(loop), Does.Contain("changed after it was put inside another value"));
        // d = {}; d['x'] = d
        var dict = new P().Proto().Op('}', 'q', 0).Str("x").Op('h', 0, 's', '.');
        Assert.That(Refused(dict), Does.Contain("contain itself"));
    }

    private static IEnumerable<TestCaseData> BadTensors()
    {
        P One(Func<P, P> tensor) => tensor(new P().Proto().OrderedDict().Mark().Str("w")).Op('u', '.');
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 1, [2, 3], [3, 1])), "reaches element 6 of storage '0', which holds 6").SetName("Tensor_OffsetPushesPastStorage");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [3, 3], [3, 1])), "reaches element 8").SetName("Tensor_ShapeLargerThanStorage");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [2, 3], [1, 4])), "reaches element 9").SetName("Tensor_StrideLeavesStorage");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [2, 3], [3])), "2 sizes but 1 strides").SetName("Tensor_StrideCount");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [-2, 3], [3, 1])), "size[0]").SetName("Tensor_NegativeSize");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, -1, [2], [1])), "storage offset").SetName("Tensor_NegativeOffset");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [1L << 40, 1L << 40], [1, 1])), "more elements than fit in 64 bits").SetName("Tensor_ShapeOverflow");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [3, 1], [1L << 62, 1])), "past 2^63").SetName("Tensor_ReachOverflow");
        yield return new TestCaseData(One(p => p.Tensor("0", -1, 0, [1], [1])), "non-negative element count").SetName("Tensor_NegativeStorageSize");
        yield return new TestCaseData(One(p => p.Tensor("0", 1L << 62, 0, [1], [1])), "non-negative element count").SetName("Tensor_StorageBytesOverflow");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, [1L << 20, 1L << 20], [0, 0])), "repeats the 6 elements").SetName("Tensor_HugeExpandedView");
        yield return new TestCaseData(One(p => p.Tensor("../../etc/passwd", 6, 0, [1], [1])), "storage key").SetName("Tensor_PathInStorageKey");
        yield return new TestCaseData(One(p => p.Tensor("0", 6, 0, Enumerable.Repeat(1L, 40).ToArray(), Enumerable.Repeat(1L, 40).ToArray())), "40 dimensions").SetName("Tensor_TooManyDims");
        yield return new TestCaseData(One(p => p.Global("torch._utils", "_rebuild_tensor_v2").Mark().Storage("0", 6).Int(0).Ints(2).Ints(1).Op(0x89)
            .OrderedDict().Str("hook").Op('N', 's').Op('t', 'R')), "backward hooks").SetName("Tensor_WithHooks");
        yield return new TestCaseData(One(p => p.Global("torch._utils", "_rebuild_tensor_v2").Mark().Int(0).Int(0).Ints(2).Ints(1).Op(0x89)
            .OrderedDict().Op('t', 'R')), "expected a storage reference").SetName("Tensor_NoStorage");
        yield return new TestCaseData(One(p => p.Global("torch._utils", "_rebuild_tensor_v2").Mark().Storage("0", 6).Int(0).Op('t', 'R')), "2 arguments").SetName("Tensor_TooFewArguments");
        yield return new TestCaseData(One(p => p.Global("torch", "FloatStorage").Op(')', 'R')), "type tag").SetName("Tensor_CallsAStorageClass");
        yield return new TestCaseData(One(p => p.Mark().Str("storage").Str("not a class").Str("0").Str("cpu").Int(1).Op('t', 'Q')), "storage type").SetName("Tensor_BadPersistentId");
        yield return new TestCaseData(
            new P().Proto().OrderedDict().Mark().Str("a").Tensor("0", 6, 0, [6], [1]).Str("b").Tensor("0", 8, 0, [6], [1]).Op('u', '.'),
            "different types or sizes").SetName("Tensor_StorageNamedTwiceDifferently");
    }

    [TestCaseSource(nameof(BadTensors))]
    public void TensorsThatLeaveTheirStorageOrLieAreRefused(P p, string expected) => Assert.That(Refused(p), Does.Contain(expected));

    private static IEnumerable<TestCaseData> NotStateDicts()
    {
        yield return new TestCaseData(new P().Proto().Op(']', '.'), "a list of 0").SetName("NotStateDict_List");
        yield return new TestCaseData(new P().Proto().Op('}').Str("epoch").Int(3).Op('s', '.'), "'epoch' is the integer 3, not a tensor").SetName("NotStateDict_TrainingCheckpoint");
        yield return new TestCaseData(new P().Proto().Op('}').Str("model").Op('}').Op('s', '.'), "training checkpoint").SetName("NotStateDict_Nested");
        yield return new TestCaseData(new P().Proto().Op('}').Int(3).Tensor("0", 1, 0, [1], [1]).Op('s', '.'), "key that is the integer 3").SetName("NotStateDict_IntegerKey");
        yield return new TestCaseData(new P().Proto().Op('}').Str("").Tensor("0", 1, 0, [1], [1]).Op('s', '.'), "empty name").SetName("NotStateDict_EmptyName");
        yield return new TestCaseData(new P().Proto().OrderedDict().Mark().Str("w").Tensor("0", 1, 0, [1], [1]).Str("w").Tensor("1", 1, 0, [1], [1]).Op('u', '.'),
            "'w' appears twice").SetName("NotStateDict_DuplicateName");
        yield return new TestCaseData(new P().Proto().OrderedDict().Op(']', 'b', '.'), "BUILD with a list").SetName("NotStateDict_BuildWithList");
        yield return new TestCaseData(new P().Proto().Global("collections", "OrderedDict").Mark().Int(1).Op('t', 'R', '.'), "OrderedDict is called with arguments").SetName("NotStateDict_OrderedDictWithArgs");
    }

    [TestCaseSource(nameof(NotStateDicts))]
    public void PicklesThatAreNotStateDictsAreRefused(P p, string expected) => Assert.That(Refused(p), Does.Contain(expected));

    [Test]
    public void RandomMutationsOfAValidPickleNeverEscapeAsAnotherException()
    {
        // The pickle of a real writer, then 20000 random edits: each either reads or throws ModelFormatException.
        var views = new List<PyTorchWriter.TorchView>
        {
            new("a", 0, 0, [2, 3], [3, 1]), new("b", 0, 1, [2, 2], [1, 3]), new("c", 1, 0, [4], [1]),
        };
        var original = PyTorchWriter.Pickle(views, [(new float[6], TorchStorageType.Known["FloatStorage"]), (new float[4], TorchStorageType.Known["HalfStorage"])]);
        Assert.That(TorchPickle.ReadStateDict(original, "x"), Has.Count.EqualTo(3));
        var rng = new Random(2024);
        int ok = 0, refused = 0;
        for (int iter = 0; iter < 20000; iter++)
        {
            var b = (byte[])original.Clone();
            switch (rng.Next(4))
            {
                case 0:
                    for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
                    break;
                case 1:
                    b = b[..rng.Next(b.Length)];
                    break;
                case 2:
                {
                    int at = rng.Next(b.Length), len = rng.Next(1, 8);
                    b = [.. b[..at], .. b[Math.Min(b.Length, at + len)..]];
                    break;
                }
                default:
                {
                    int at = rng.Next(b.Length);
                    var chunk = original.AsSpan(rng.Next(original.Length - 8), 8).ToArray();
                    b = [.. b[..at], .. chunk, .. b[at..]];
                    break;
                }
            }
            try
            {
                TorchPickle.ReadStateDict(b, "x");
                ok++;
            }
            catch (ModelFormatException)
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iter}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        TestContext.Out.WriteLine($"pickle mutations: {ok} read, {refused} refused");
        Assert.That(refused, Is.GreaterThan(10000));
    }
}
