using System.Buffers.Binary;
using System.Text;

namespace LongDep.Models.HuggingFace;

/// <summary>A storage element type a PyTorch checkpoint may name (<c>torch.FloatStorage</c>, ...).</summary>
/// <param name="ClassName">The storage class as the pickle names it, e.g. <c>FloatStorage</c>.</param>
/// <param name="DtypeName">The element type in safetensors' spelling (F32, F16, BF16, I64, ...).</param>
/// <param name="ElementSize">Bytes per element.</param>
/// <param name="Type">F32, F16 or BF16 when the reader converts it to float32; <see cref="TensorType.Other"/> otherwise.</param>
internal sealed record TorchStorageType(string ClassName, string DtypeName, int ElementSize, TensorType Type)
{
    /// <summary>The storage classes of <c>torch</c> that a state dict's tensors use, by class name.</summary>
    public static readonly IReadOnlyDictionary<string, TorchStorageType> Known = new[]
    {
        new TorchStorageType("FloatStorage", "F32", 4, TensorType.F32),
        new TorchStorageType("HalfStorage", "F16", 2, TensorType.F16),
        new TorchStorageType("BFloat16Storage", "BF16", 2, TensorType.BF16),
        new TorchStorageType("DoubleStorage", "F64", 8, TensorType.Other),
        new TorchStorageType("LongStorage", "I64", 8, TensorType.Other),
        new TorchStorageType("IntStorage", "I32", 4, TensorType.Other),
        new TorchStorageType("ShortStorage", "I16", 2, TensorType.Other),
        new TorchStorageType("CharStorage", "I8", 1, TensorType.Other),
        new TorchStorageType("ByteStorage", "U8", 1, TensorType.Other),
        new TorchStorageType("BoolStorage", "BOOL", 1, TensorType.Other),
        new TorchStorageType("ComplexFloatStorage", "C64", 8, TensorType.Other),
        new TorchStorageType("ComplexDoubleStorage", "C128", 16, TensorType.Other),
    }.ToDictionary(t => t.ClassName, StringComparer.Ordinal);
}

/// <summary>One storage of a checkpoint: the archive record <c>data/{Key}</c> holding <see cref="Numel"/> elements.</summary>
internal sealed record TorchStorage(string Key, TorchStorageType Type, long Numel, string Location)
{
    public long ByteSize => Numel * Type.ElementSize;
}

/// <summary>
/// A tensor of a state dict: a strided view into a storage (elements, not bytes). Several tensors may share one
/// storage (tied weights, slices).
/// </summary>
internal sealed record TorchTensor(TorchStorage Storage, long Offset, long[] Shape, long[] Stride)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Whether the view is the row-major layout of <see cref="Shape"/> (dimensions of size 1 may have any stride).</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int d = Shape.Length - 1; d >= 0; d--)
            {
                if (Shape[d] != 1 && Stride[d] != expected) return false;
                expected *= Shape[d];
            }
            return true;
        }
    }
}

/// <summary>
/// A restricted reader for the <c>data.pkl</c> record of a PyTorch checkpoint. It never runs code and never imports
/// anything the file names: it interprets the pickle opcodes a state dict needs (protocol 2 and later: dicts, lists,
/// tuples, integers, floats, strings, booleans, None, the memo) and recognises a fixed set of globals by name —
/// <c>collections.OrderedDict</c> (called with no arguments), <c>torch._utils._rebuild_tensor_v2</c> and
/// <c>torch._utils._rebuild_parameter</c> (turned into tensor descriptions), and the <c>torch.*Storage</c> classes (as
/// type tags in persistent ids). Any other global, and any opcode outside that set, is refused with one line naming it.
/// Every length is checked against the bytes left; the stack, memo, marks and nesting depth are bounded; a container
/// cannot be changed once it is inside another, so no pickle can build a cycle.
/// </summary>
internal static class TorchPickle
{
    /// <summary>Largest data.pkl we read. Real state dicts take a few hundred bytes per tensor.</summary>
    public const long MaxPickleBytes = 64L << 20;

    private const int MaxStack = 1 << 20;
    private const int MaxMemo = 1 << 20;
    private const int MaxMarks = 256;
    private const int MaxDepth = 64;
    private const int MaxDims = 32;
    private const int MaxGlobalNameBytes = 256;
    private const long MaxRepeatedView = 1 << 24;

    private const string OrderedDictGlobal = "collections.OrderedDict";
    private const string RebuildTensorGlobal = "torch._utils._rebuild_tensor_v2";
    private const string RebuildParameterGlobal = "torch._utils._rebuild_parameter";

    /// <summary>
    /// Reads a pickled state dict (a dict or OrderedDict of name → tensor). Returns the tensors in pickle order.
    /// </summary>
    /// <exception cref="ModelFormatException">The pickle is malformed, needs something outside the allowed set, or is not a state dict.</exception>
    public static IReadOnlyList<(string Name, TorchTensor Tensor)> ReadStateDict(ReadOnlySpan<byte> pickle, string source)
    {
        var root = new Machine(source).Run(pickle);
        if (root is not PDict dict)
            throw new ModelFormatException(source, $"data.pkl holds {Describe(root)}, expected a state dict (a dict of tensor name → tensor)");

        var result = new List<(string, TorchTensor)>(dict.Items.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not PStr name)
                throw new ModelFormatException(source, $"the state dict has a key that is {Describe(key)}, expected tensor names (strings)");
            if (name.Value.Length == 0)
                throw new ModelFormatException(source, "the state dict has a tensor with an empty name");
            if (value is not PTensor tensor)
                throw new ModelFormatException(source,
                    $"state dict entry '{name.Value}' is {Describe(value)}, not a tensor: the file holds more than a model's weights " +
                    "(a training checkpoint?); save just the model's state_dict (or convert it to safetensors)");
            if (!names.Add(name.Value))
                throw new ModelFormatException(source, $"tensor '{name.Value}' appears twice in the state dict");
            result.Add((name.Value, tensor.Tensor));
        }
        return result;
    }

    private static string Describe(PValue v) => v switch
    {
        PNone => "None",
        PBool => "a boolean",
        PInt i => $"the integer {i.Value}",
        PFloat => "a float",
        PStr s => $"the string '{(s.Value.Length > 40 ? s.Value[..40] + "..." : s.Value)}'",
        PTuple t => $"a tuple of {t.Items.Length}",
        PList l => $"a list of {l.Items.Count}",
        PDict d => $"a dict of {d.Items.Count} entries",
        PGlobal g => $"the global '{g.Name}'",
        PStorage => "a storage",
        PTensor => "a tensor",
        _ => v.GetType().Name,
    };

    // ---- values -------------------------------------------------------------------------------

    private abstract class PValue
    {
        public virtual int Depth => 0;
    }

    private sealed class PNone : PValue
    {
        public static readonly PNone Instance = new();
    }

    private sealed class PBool(bool value) : PValue
    {
        public bool Value { get; } = value;
    }

    private sealed class PInt(long value) : PValue
    {
        public long Value { get; } = value;
    }

    private sealed class PFloat : PValue;

    private sealed class PStr(string value) : PValue
    {
        public string Value { get; } = value;
    }

    /// <summary>A name the pickle imports: only ever a tag that REDUCE or a persistent id looks up, never called.</summary>
    private sealed class PGlobal(string name) : PValue
    {
        public string Name { get; } = name;
    }

    private sealed class PStorage(TorchStorage storage) : PValue
    {
        public TorchStorage Storage { get; } = storage;
    }

    private sealed class PTensor(TorchTensor tensor) : PValue
    {
        public TorchTensor Tensor { get; } = tensor;
    }

    private sealed class PTuple(PValue[] items) : PValue
    {
        public PValue[] Items { get; } = items;
        public override int Depth { get; } = items.Length == 0 ? 1 : items.Max(i => i.Depth) + 1;
    }

    /// <summary>A list or dict: mutable until it is put inside another container (then frozen, so no cycle can form).</summary>
    private abstract class PContainer : PValue
    {
        private int _depth = 1;
        public bool Frozen { get; set; }
        public override int Depth => _depth;
        public void Grew(int childDepth) => _depth = Math.Max(_depth, childDepth + 1);
    }

    private sealed class PList : PContainer
    {
        public List<PValue> Items { get; } = [];
    }

    private sealed class PDict : PContainer
    {
        public List<(PValue Key, PValue Value)> Items { get; } = [];
    }

    // ---- the machine --------------------------------------------------------------------------

    private sealed class Machine(string source)
    {
        private readonly List<PValue> _stack = [];
        private readonly List<int> _marks = [];
        private readonly Dictionary<long, PValue> _memo = [];
        private readonly Dictionary<string, TorchStorage> _storages = new(StringComparer.Ordinal);
        private int _pos;
        private int _opAt;

        private ModelFormatException Fail(string problem) => new(source, $"data.pkl byte {_opAt}: {problem}");

        public PValue Run(ReadOnlySpan<byte> p)
        {
            if (p.Length == 0) throw new ModelFormatException(source, "data.pkl is empty");
            if (p.Length > MaxPickleBytes)
                throw new ModelFormatException(source, $"data.pkl is {p.Length} bytes, more than the {MaxPickleBytes}-byte limit for a state dict");
            if (p[0] != 0x80)
                throw new ModelFormatException(source,
                    $"data.pkl does not start with a pickle protocol opcode (found byte 0x{p[0]:X2}); torch.save writes protocol 2 or later");

            while (true)
            {
                if (_pos >= p.Length) throw new ModelFormatException(source, $"data.pkl ends at byte {p.Length} without a STOP opcode (truncated?)");
                _opAt = _pos;
                byte op = p[_pos++];
                switch (op)
                {
                    case 0x80: // PROTO
                    {
                        byte v = Byte(p);
                        if (v < 2 || v > 5) throw Fail($"pickle protocol {v} is not supported (expected 2 to 5)");
                        break;
                    }
                    case 0x95: // FRAME: a length hint only
                        if (U64(p) > (ulong)(p.Length - _pos)) throw Fail("a FRAME runs past the end of data.pkl");
                        break;
                    case (byte)'.': // STOP
                        if (_stack.Count != 1 || _marks.Count != 0)
                            throw Fail($"STOP with {_stack.Count} values on the stack and {_marks.Count} open marks (expected exactly one value)");
                        return _stack[0];
                    case (byte)'(': // MARK
                        if (_marks.Count >= MaxMarks) throw Fail($"more than {MaxMarks} nested marks");
                        _marks.Add(_stack.Count);
                        break;
                    case (byte)'0': // POP
                        Pop();
                        break;
                    case (byte)'1': // POP_MARK
                        PopMark();
                        break;
                    case (byte)'N':
                        Push(PNone.Instance);
                        break;
                    case 0x88:
                        Push(new PBool(true));
                        break;
                    case 0x89:
                        Push(new PBool(false));
                        break;
                    case (byte)'J': // BININT
                        Push(new PInt(BinaryPrimitives.ReadInt32LittleEndian(Take(p, 4))));
                        break;
                    case (byte)'K': // BININT1
                        Push(new PInt(Byte(p)));
                        break;
                    case (byte)'M': // BININT2
                        Push(new PInt(BinaryPrimitives.ReadUInt16LittleEndian(Take(p, 2))));
                        break;
                    case 0x8a: // LONG1
                        Push(new PInt(Long(Take(p, Byte(p)))));
                        break;
                    case 0x8b: // LONG4
                    {
                        uint n = BinaryPrimitives.ReadUInt32LittleEndian(Take(p, 4));
                        if (n > 8) throw Fail($"an integer of {n} bytes; at most 8 bytes are accepted");
                        Push(new PInt(Long(Take(p, (int)n))));
                        break;
                    }
                    case (byte)'G': // BINFLOAT
                        Take(p, 8);
                        Push(new PFloat());
                        break;
                    case 0x8c: // SHORT_BINUNICODE
                        Push(new PStr(Utf8(Take(p, Byte(p)))));
                        break;
                    case (byte)'X': // BINUNICODE
                        Push(new PStr(Utf8(Take(p, Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(p, 4)), p)))));
                        break;
                    case 0x8d: // BINUNICODE8
                        Push(new PStr(Utf8(Take(p, Length(U64(p), p)))));
                        break;
                    case (byte)')':
                        Push(new PTuple([]));
                        break;
                    case 0x85:
                        Push(Tuple(1));
                        break;
                    case 0x86:
                        Push(Tuple(2));
                        break;
                    case 0x87:
                        Push(Tuple(3));
                        break;
                    case (byte)'t': // TUPLE
                        Push(MakeTuple(PopMark()));
                        break;
                    case (byte)']':
                        Push(new PList());
                        break;
                    case (byte)'l': // LIST
                    {
                        var items = PopMark();
                        var list = new PList();
                        Append(list, items);
                        Push(list);
                        break;
                    }
                    case (byte)'a': // APPEND
                    {
                        var v = Pop();
                        Append(Top(), [v]);
                        break;
                    }
                    case (byte)'e': // APPENDS
                    {
                        var items = PopMark();
                        Append(Top(), items);
                        break;
                    }
                    case (byte)'}':
                        Push(new PDict());
                        break;
                    case (byte)'d': // DICT
                    {
                        var items = PopMark();
                        var dict = new PDict();
                        SetItems(dict, items);
                        Push(dict);
                        break;
                    }
                    case (byte)'s': // SETITEM
                    {
                        var v = Pop();
                        var k = Pop();
                        SetItems(Top(), [k, v]);
                        break;
                    }
                    case (byte)'u': // SETITEMS
                    {
                        var items = PopMark();
                        SetItems(Top(), items);
                        break;
                    }
                    case (byte)'q': // BINPUT
                        Put(Byte(p));
                        break;
                    case (byte)'r': // LONG_BINPUT
                        Put(BinaryPrimitives.ReadUInt32LittleEndian(Take(p, 4)));
                        break;
                    case 0x94: // MEMOIZE
                        Put(_memo.Count);
                        break;
                    case (byte)'h': // BINGET
                        Get(Byte(p));
                        break;
                    case (byte)'j': // LONG_BINGET
                        Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(p, 4)));
                        break;
                    case (byte)'c': // GLOBAL
                    {
                        string module = Line(p);
                        string name = Line(p);
                        Push(Global(module, name));
                        break;
                    }
                    case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop();
                        var module = Pop();
                        if (module is not PStr m || name is not PStr n) throw Fail("STACK_GLOBAL needs two strings");
                        Push(Global(m.Value, n.Value));
                        break;
                    }
                    case (byte)'Q': // BINPERSID
                        Push(PersistentLoad(Pop()));
                        break;
                    case (byte)'R': // REDUCE
                    {
                        var args = Pop();
                        var callable = Pop();
                        Push(Reduce(callable, args));
                        break;
                    }
                    case (byte)'b': // BUILD
                    {
                        var state = Pop();
                        Build(Top(), state);
                        break;
                    }
                    default:
                        throw Fail($"pickle opcode {OpcodeName(op)} is not one a state dict uses; refusing to load the file");
                }
            }
        }

        // -- stack --

        private void Push(PValue v)
        {
            if (_stack.Count >= MaxStack) throw Fail($"more than {MaxStack} values on the pickle stack");
            if (v.Depth > MaxDepth) throw Fail($"values nested more than {MaxDepth} deep");
            _stack.Add(v);
        }

        private PValue Pop()
        {
            int floor = _marks.Count > 0 ? _marks[^1] : 0;
            if (_stack.Count <= floor) throw Fail("an opcode needs a value but the stack is empty (malformed pickle)");
            var v = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return v;
        }

        private PValue Top()
        {
            int floor = _marks.Count > 0 ? _marks[^1] : 0;
            if (_stack.Count <= floor) throw Fail("an opcode needs a value but the stack is empty (malformed pickle)");
            return _stack[^1];
        }

        private List<PValue> PopMark()
        {
            if (_marks.Count == 0) throw Fail("an opcode needs a MARK but none is open (malformed pickle)");
            int at = _marks[^1];
            _marks.RemoveAt(_marks.Count - 1);
            var items = _stack.GetRange(at, _stack.Count - at);
            _stack.RemoveRange(at, _stack.Count - at);
            return items;
        }

        private PTuple Tuple(int n)
        {
            var items = new PValue[n];
            for (int i = n - 1; i >= 0; i--) items[i] = Pop();
            return MakeTuple(items);
        }

        private PTuple MakeTuple(IList<PValue> items)
        {
            foreach (var v in items) Freeze(v);
            return new PTuple(items.ToArray());
        }

        /// <summary>A container put inside another can no longer change: no pickle can make a value contain itself.</summary>
        private static void Freeze(PValue v)
        {
            if (v is PContainer c) c.Frozen = true;
        }

        private void Insert(PContainer into, PValue v)
        {
            if (into.Frozen) throw Fail("a list or dict is changed after it was put inside another value; refusing (a state dict never does this)");
            if (ReferenceEquals(into, v)) throw Fail("a list or dict would contain itself; refusing");
            Freeze(v);
            into.Grew(v.Depth);
            if (into.Depth > MaxDepth) throw Fail($"values nested more than {MaxDepth} deep");
        }

        private void Append(PValue target, List<PValue> items)
        {
            if (target is not PList list) throw Fail($"APPEND to {Describe(target)}, expected a list");
            foreach (var v in items)
            {
                Insert(list, v);
                list.Items.Add(v);
            }
        }

        private void SetItems(PValue target, List<PValue> items)
        {
            if (target is not PDict dict) throw Fail($"SETITEM on {Describe(target)}, expected a dict");
            if (items.Count % 2 != 0) throw Fail("SETITEMS with an odd number of keys and values");
            for (int i = 0; i < items.Count; i += 2)
            {
                var (k, v) = (items[i], items[i + 1]);
                if (k is not (PStr or PInt or PBool or PNone))
                    throw Fail($"a dict key is {Describe(k)}; only strings and integers are accepted as keys");
                Insert(dict, k);
                Insert(dict, v);
                dict.Items.Add((k, v));
            }
        }

        private void Put(long index)
        {
            if (!_memo.ContainsKey(index) && _memo.Count >= MaxMemo) throw Fail($"more than {MaxMemo} memo entries");
            _memo[index] = Top();
        }

        private void Get(long index)
        {
            if (!_memo.TryGetValue(index, out var v)) throw Fail($"memo entry {index} is read before it is written (malformed pickle)");
            Push(v);
        }

        // -- the allowed globals --

        private PGlobal Global(string module, string name)
        {
            string full = module + "." + name;
            bool known = full is OrderedDictGlobal or RebuildTensorGlobal or RebuildParameterGlobal
                || (module == "torch" && TorchStorageType.Known.ContainsKey(name));
            if (!known)
            {
                if (module == "torch" && name.EndsWith("Storage", StringComparison.Ordinal))
                    throw Fail($"the tensors use storage type '{full}', which this reader does not know; " +
                        "re-save the weights as float32, float16 or bfloat16 (or convert them to safetensors)");
                throw Fail($"the pickle would run '{Printable(full)}', which a state dict does not need; refusing to load the file " +
                    "(only tensors in a dict are accepted; convert trusted checkpoints to safetensors)");
            }
            return new PGlobal(full);
        }

        private PStorage PersistentLoad(PValue pid)
        {
            // ('storage', torch.<Type>Storage, key, location, numel)
            if (pid is not PTuple { Items: [PStr { Value: "storage" }, var typeTag, var keyValue, var locValue, var numelValue] })
                throw Fail($"a persistent id is {Describe(pid)}, expected ('storage', storage type, key, location, size)");
            if (typeTag is not PGlobal g || !g.Name.StartsWith("torch.", StringComparison.Ordinal)
                || !TorchStorageType.Known.TryGetValue(g.Name["torch.".Length..], out var type))
                throw Fail($"a persistent id names {Describe(typeTag)} as its storage type, expected a torch storage class");
            if (keyValue is not PStr { Value: var key } || !IsStorageKey(key))
                throw Fail($"a storage key is {Describe(keyValue)}, expected a short name of letters, digits, '_', '.' or '-'");
            if (locValue is not PStr { Value: var location } || location.Length > 64)
                throw Fail($"the location of storage '{key}' is {Describe(locValue)}, expected a device name such as 'cpu'");
            if (numelValue is not PInt { Value: var numel } || numel < 0 || numel > long.MaxValue / type.ElementSize)
                throw Fail($"storage '{key}' has size {Describe(numelValue)}, expected a non-negative element count");

            if (_storages.TryGetValue(key, out var known))
            {
                if (known.Type != type || known.Numel != numel)
                    throw Fail($"storage '{key}' is named twice with different types or sizes ({known.Type.ClassName} × {known.Numel}, {type.ClassName} × {numel})");
                return new PStorage(known);
            }
            var storage = new TorchStorage(key, type, numel, location);
            _storages.Add(key, storage);
            return new PStorage(storage);
        }

        private static bool IsStorageKey(string key) =>
            key.Length is > 0 and <= 64 && key.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-') && key is not "." and not "..";

        private PValue Reduce(PValue callable, PValue args)
        {
            if (callable is not PGlobal g)
                throw Fail($"REDUCE calls {Describe(callable)}, which is not a known function; refusing");
            if (args is not PTuple t) throw Fail($"REDUCE with {Describe(args)} as its arguments, expected a tuple");
            switch (g.Name)
            {
                case OrderedDictGlobal:
                    if (t.Items.Length != 0) throw Fail("OrderedDict is called with arguments; a state dict calls it with none");
                    return new PDict();
                case RebuildTensorGlobal:
                    return new PTensor(RebuildTensor(t.Items));
                case RebuildParameterGlobal:
                    // (data, requires_grad, backward_hooks): the data is already a tensor.
                    if (t.Items is not [PTensor data, PBool, var hooks]) throw Fail("_rebuild_parameter expects (tensor, requires_grad, backward_hooks)");
                    CheckNoHooks(hooks);
                    return data;
                default:
                    throw Fail($"REDUCE would call '{g.Name}', which is a type tag, not a function; refusing");
            }
        }

        private TorchTensor RebuildTensor(PValue[] a)
        {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            if (a.Length is < 6 or > 7)
                throw Fail($"_rebuild_tensor_v2 has {a.Length} arguments, expected 6 or 7");
            if (a[0] is not PStorage { Storage: var storage }) throw Fail($"_rebuild_tensor_v2's storage is {Describe(a[0])}, expected a storage reference");
            if (a[1] is not PInt { Value: var offset } || offset < 0) throw Fail($"_rebuild_tensor_v2's storage offset is {Describe(a[1])}, expected a non-negative integer");
            var shape = Dims(a[2], "size");
            var stride = Dims(a[3], "stride");
            if (shape.Length != stride.Length)
                throw Fail($"a tensor has {shape.Length} sizes but {stride.Length} strides");
            if (a[4] is not PBool) throw Fail($"requires_grad is {Describe(a[4])}, expected a boolean");
            CheckNoHooks(a[5]);
            if (a.Length == 7 && !(a[6] is PNone || a[6] is PDict { Items.Count: 0 }))
                throw Fail("a tensor carries metadata; only plain tensors are accepted");

            // Every element the view reaches must lie inside the storage.
            long count = 1;
            long last = offset;
            for (int d = 0; d < shape.Length; d++)
            {
                if (shape[d] != 0 && count > long.MaxValue / shape[d]) throw Fail($"tensor shape {Architectures.FormatShape(shape)} has more elements than fit in 64 bits");
                count *= shape[d];
            }
            if (count > 0)
            {
                for (int d = 0; d < shape.Length; d++)
                {
                    long reach = shape[d] - 1;
                    if (reach > 0 && stride[d] > (long.MaxValue - last) / reach)
                        throw Fail($"tensor view (offset {offset}, shape {Architectures.FormatShape(shape)}, stride {Architectures.FormatShape(stride)}) reaches past 2^63 elements");
                    last += reach * stride[d];
                }
                if (last >= storage.Numel)
                    throw Fail($"tensor view (offset {offset}, shape {Architectures.FormatShape(shape)}, stride {Architectures.FormatShape(stride)}) " +
                        $"reaches element {last} of storage '{storage.Key}', which holds {storage.Numel}");
                // A view may repeat elements (stride 0: expand); reading it allocates all of them, so the repetition
                // is bounded: a tiny file cannot ask for gigabytes.
                if (count > storage.Numel && count > MaxRepeatedView)
                    throw Fail($"tensor view of {count} elements repeats the {storage.Numel} elements of storage '{storage.Key}'; " +
                        $"at most {MaxRepeatedView} are accepted for such a view (save the tensor with .contiguous())");
            }
            return new TorchTensor(storage, offset, shape, stride);
        }

        private long[] Dims(PValue v, string what)
        {
            if (v is not PTuple t) throw Fail($"a tensor's {what} is {Describe(v)}, expected a tuple of integers");
            if (t.Items.Length > MaxDims) throw Fail($"a tensor has {t.Items.Length} dimensions; at most {MaxDims} are accepted");
            var dims = new long[t.Items.Length];
            for (int i = 0; i < dims.Length; i++)
            {
                if (t.Items[i] is not PInt { Value: >= 0 and var x }) throw Fail($"a tensor's {what}[{i}] is {Describe(t.Items[i])}, expected a non-negative integer");
                dims[i] = x;
            }
            return dims;
        }

        private void CheckNoHooks(PValue hooks)
        {
            if (hooks is PNone || hooks is PDict { Items.Count: 0 }) return;
            throw Fail($"a tensor has backward hooks ({Describe(hooks)}); only plain tensors are accepted");
        }

        private void Build(PValue target, PValue state)
        {
            // OrderedDict.__reduce__ passes the instance's attributes, e.g. {'_metadata': ...}: checked, then set aside.
            if (target is not PDict dict) throw Fail($"BUILD on {Describe(target)}; only a state dict's attributes are accepted");
            if (dict.Frozen) throw Fail("BUILD on a dict that is already inside another value; refusing");
            if (state is not PDict attrs || attrs.Items.Any(kv => kv.Key is not PStr))
                throw Fail($"BUILD with {Describe(state)}, expected a dict of attribute names");
            Freeze(state);
        }

        // -- reading --

        private byte Byte(ReadOnlySpan<byte> p) => Take(p, 1)[0];

        private ulong U64(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt64LittleEndian(Take(p, 8));

        private ReadOnlySpan<byte> Take(ReadOnlySpan<byte> p, int n)
        {
            if (n > p.Length - _pos) throw Fail($"an opcode needs {n} bytes but only {p.Length - _pos} are left (truncated?)");
            var s = p.Slice(_pos, n);
            _pos += n;
            return s;
        }

        private int Length(ulong n, ReadOnlySpan<byte> p)
        {
            if (n > (ulong)(p.Length - _pos)) throw Fail($"a string of {n} bytes runs past the end of data.pkl ({p.Length - _pos} bytes left)");
            return (int)n;
        }

        private long Long(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length > 8) throw Fail($"an integer of {bytes.Length} bytes; at most 8 bytes are accepted");
            if (bytes.Length == 0) return 0;
            Span<byte> buf = stackalloc byte[8];
            byte fill = (bytes[^1] & 0x80) != 0 ? (byte)0xFF : (byte)0; // two's complement, sign-extended
            buf.Fill(fill);
            bytes.CopyTo(buf);
            return BinaryPrimitives.ReadInt64LittleEndian(buf);
        }

        private string Utf8(ReadOnlySpan<byte> bytes)
        {
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Fail("a string is not valid UTF-8");
            }
        }

        private string Line(ReadOnlySpan<byte> p)
        {
            var window = p[_pos..];
            int end = window[..Math.Min(window.Length, MaxGlobalNameBytes + 1)].IndexOf((byte)'\n');
            if (end < 0)
                throw Fail(window.Length > MaxGlobalNameBytes
                    ? $"a GLOBAL name is longer than {MaxGlobalNameBytes} bytes"
                    : "a GLOBAL name runs to the end of data.pkl without a newline");
            string s = Utf8(p.Slice(_pos, end));
            _pos += end + 1;
            return s;
        }

        private static string Printable(string s)
        {
            var sb = new StringBuilder(s.Length);
            foreach (char ch in s) sb.Append(char.IsControl(ch) ? '?' : ch);
            return sb.ToString();
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static string OpcodeName(byte op)
    {
        string? name = op switch
        {
            (byte)'I' => "INT", (byte)'L' => "LONG", (byte)'F' => "FLOAT", (byte)'S' => "STRING", (byte)'V' => "UNICODE",
            (byte)'P' => "PERSID", (byte)'p' => "PUT", (byte)'g' => "GET", (byte)'T' => "BINSTRING", (byte)'U' => "SHORT_BINSTRING",
            (byte)'B' => "BINBYTES", (byte)'C' => "SHORT_BINBYTES", (byte)'i' => "INST", (byte)'o' => "OBJ", (byte)'2' => "DUP",
            0x81 => "NEWOBJ", 0x82 => "EXT1", 0x83 => "EXT2", 0x84 => "EXT4", 0x8e => "BINBYTES8", 0x8f => "EMPTY_SET",
            0x90 => "ADDITEMS", 0x91 => "FROZENSET", 0x92 => "NEWOBJ_EX", 0x96 => "BYTEARRAY8", 0x97 => "NEXT_BUFFER",
            0x98 => "READONLY_BUFFER",
            _ => null,
        };
        return name is null ? $"0x{op:X2}" : $"{name} (0x{op:X2})";
    }
}
