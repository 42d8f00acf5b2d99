using System.Runtime.InteropServices;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using LongDep.Models.Gguf;
using NUnit.Framework;

namespace LongDep.Models.Tests.LlamaCpp;

/// <summary>
/// llama.cpp as the independent reference of the test suite, run in-process through LLamaSharp's native library
/// (the LLamaSharp.Backend.Cpu package: nothing to build). What it offers:
/// <list type="bullet">
/// <item><see cref="Logits"/> and <see cref="TokenNll"/>: a GGUF's logits at every position of one batch decode (KV
/// cache in F32, flash attention off), and the per-token NLL computed from them in float64.</item>
/// <item><see cref="Vocabulary"/>: llama.cpp's tokenizer of a GGUF (the file loaded vocabulary-only).</item>
/// <item><see cref="Quantize"/>: llama-quantize's presets (<c>llama_model_quantize</c>) on a GGUF file.</item>
/// <item><see cref="Ggml"/>: ggml's own per-type dequantizer (<c>to_float</c>) and quantizer
/// (<c>ggml_quantize_chunk</c>) on raw blocks.</item>
/// </list>
/// The library is loaded once per test process, with llama.cpp's log kept in memory: a failure quotes its tail.
/// When the library cannot load, every caller fails with the loader's own reason (never a silent skip).
/// </summary>
internal static class LlamaCppReference
{
    private static readonly object Gate = new();
    private static readonly Queue<string> LogTail = new();
    private static string? _loadProblem;
    private static bool _loaded;

    /// <summary>
    /// Threads llama.cpp uses: one. The reference models are tiny, and CI's 2 cores also run the other test projects
    /// (ggml's row split makes results the same for any thread count).
    /// </summary>
    public static int Threads => 1;

    /// <summary>Loads llama.cpp once; fails the calling test with the precise reason when it cannot be loaded.</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (!_loaded && _loadProblem is null)
            {
                try
                {
                    if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                        NativeLibraryConfig.All.WithLogCallback(Log);
                    NativeApi.llama_empty_call(); // forces the load (and llama_backend_init)
                    _loaded = true;
                }
                catch (Exception e)
                {
                    _loadProblem = $"llama.cpp (LLamaSharp.Backend.Cpu) could not be loaded: {e.GetType().Name}: {e.Message}" +
                                   (e.InnerException is { } inner ? $" ({inner.GetType().Name}: {inner.Message})" : "") +
                                   $"; its log ended with: {RecentLog()}";
                }
            }
            if (_loadProblem is not null) Assert.Fail(_loadProblem);
        }
    }

    private static void Log(LLamaLogLevel level, string message)
    {
        lock (LogTail)
        {
            LogTail.Enqueue($"[{level}] {message.TrimEnd()}");
            while (LogTail.Count > 40) LogTail.Dequeue();
        }
    }

    /// <summary>The last lines llama.cpp logged, for failure messages.</summary>
    public static string RecentLog()
    {
        lock (LogTail) return LogTail.Count == 0 ? "(nothing)" : string.Join(" | ", LogTail);
    }

    // ------------------------------------------------------------------ forward

    /// <summary>
    /// llama.cpp's logits for <paramref name="tokens"/> at positions 0..n-1 of one sequence, decoded as one batch with
    /// logits for every position, the KV cache in F32 and flash attention off. Row-major [n, vocab].
    /// </summary>
    public static float[] Logits(string ggufPath, IReadOnlyList<int> tokens)
    {
        EnsureLoaded();
        int n = tokens.Count;
        if (n == 0) throw new ArgumentException("no tokens to decode", nameof(tokens));
        var p = new ModelParams(ggufPath)
        {
            ContextSize = (uint)Math.Max(n, 64),
            BatchSize = (uint)n,
            UBatchSize = (uint)n,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
            GpuLayerCount = 0,
            Threads = Threads,
            BatchThreads = Threads,
        };
        using var weights = Load(p);
        using var context = weights.CreateContext(p);
        int vocab = weights.Vocab.Count;
        var batch = new LLamaBatch();
        for (int i = 0; i < n; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, true);
        var result = context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok)
            Assert.Fail($"llama.cpp could not decode {n} tokens of {ggufPath}: {result}; log: {RecentLog()}");
        var logits = new float[(long)n * vocab];
        for (int i = 0; i < n; i++)
        {
            var row = context.NativeHandle.GetLogitsIth(i);
            if (row.Length != vocab) Assert.Fail($"llama.cpp returned {row.Length} logits at position {i}, expected {vocab}");
            row.CopyTo(logits.AsSpan(i * vocab, vocab));
        }
        return logits;
    }

    /// <summary>
    /// Per-token NLL of <paramref name="tokens"/> from llama.cpp's logits, in float64: element t is
    /// −log softmax(logits at t)[tokens[t + 1]], for t = 0..n-2.
    /// </summary>
    public static double[] TokenNll(string ggufPath, IReadOnlyList<int> tokens)
    {
        var logits = Logits(ggufPath, tokens);
        int n = tokens.Count, vocab = logits.Length / n;
        var nll = new double[n - 1];
        for (int t = 0; t + 1 < n; t++)
        {
            var row = logits.AsSpan(t * vocab, vocab);
            double max = double.NegativeInfinity;
            foreach (float v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            nll[t] = max + Math.Log(sum) - row[tokens[t + 1]];
        }
        return nll;
    }

    private static LLamaWeights Load(ModelParams p)
    {
        try
        {
            return LLamaWeights.LoadFromFile(p);
        }
        catch (Exception e) when (e is not AssertionException)
        {
            Assert.Fail($"llama.cpp could not load {p.ModelPath}: {e.Message}; log: {RecentLog()}");
            throw; // not reached
        }
    }

    /// <summary>
    /// Writes <paramref name="destination"/>: the GGUF <paramref name="source"/> with every tensor dequantized to F32 by
    /// ggml's own <c>to_float</c> (same metadata). llama.cpp running the copy computes in F32 on exactly the weights
    /// the quantized file holds, so our forward on the quantized file can be checked against it to F32 rounding.
    /// </summary>
    public static void WriteDequantizedCopy(string source, string destination)
    {
        using var file = GgufFile.Open(source);
        var w = new GgufWriter();
        foreach (var (key, value) in file.Metadata)
        {
            switch (value)
            {
                case string v: w.Add(key, v); break;
                case uint v: w.Add(key, v); break;
                case int v: w.Add(key, v); break;
                case ulong v: w.Add(key, v); break;
                case long v: w.Add(key, v); break;
                case float v: w.Add(key, v); break;
                case double v: w.Add(key, v); break;
                case bool v: w.Add(key, v); break;
                case GgufArray v: w.Add(key, v); break;
                default: Assert.Fail($"metadata {key} has a type this copy does not handle: {value.GetType().Name}"); break;
            }
        }
        foreach (var t in file.TensorList)
        {
            var info = LongDep.Models.Quant.GgmlTypes.Of(t.Type);
            w.AddTensor(t.Name, Ggml.Dequantize(info, file.RawBytes(t.Name), checked((int)t.ElementCount)), t.Shape, TensorType.F32);
        }
        w.Write(destination);
    }

    // ------------------------------------------------------------------ tokenizer

    /// <summary>llama.cpp's tokenizer of a GGUF file (loaded vocabulary-only). Dispose it when done.</summary>
    public static LlamaCppVocabulary Vocabulary(string ggufPath)
    {
        EnsureLoaded();
        return new LlamaCppVocabulary(Load(new ModelParams(ggufPath) { VocabOnly = true, GpuLayerCount = 0 }));
    }

    // ------------------------------------------------------------------ quantizer

    /// <summary>
    /// Quantizes <paramref name="source"/> (an F32/F16 GGUF) to one of llama-quantize's presets, as
    /// <c>llama-quantize source destination PRESET</c> does (the output tensor quantized too).
    /// </summary>
    public static void Quantize(string source, string destination, LLamaFtype preset)
    {
        EnsureLoaded();
        bool ok = LLamaQuantizer.Quantize(source, destination, preset, Threads, allowRequantize: false, quantizeOutputTensor: true);
        if (!ok || !File.Exists(destination))
            Assert.Fail($"llama.cpp could not quantize {source} to {preset}; log: {RecentLog()}");
    }
}

/// <summary>llama.cpp's tokenizer of one GGUF file.</summary>
internal sealed class LlamaCppVocabulary(LLamaWeights weights) : IDisposable
{
    /// <summary>
    /// The token ids llama.cpp gives <paramref name="text"/>; <paramref name="parseSpecial"/> lets control tokens
    /// written in the text (e.g. "&lt;s&gt;") become their ids, as <c>llama_tokenize(..., parse_special)</c>.
    /// </summary>
    public int[] Tokenize(string text, bool addBos = false, bool parseSpecial = false) =>
        weights.Tokenize(text, addBos, parseSpecial, Encoding.UTF8).Select(t => (int)t).ToArray();

    public void Dispose() => weights.Dispose();
}

/// <summary>
/// ggml's own per-type functions from the loaded libggml-base: the dequantizer every backend's weights go through
/// (<c>ggml_get_type_traits(type)->to_float</c>) and the reference quantizer (<c>ggml_quantize_chunk</c>).
/// The type-traits struct is read field by field and checked (name, block size, block bytes) before use.
/// </summary>
internal static unsafe class Ggml
{
    private static readonly object Gate = new();
    private static nint _library;
    private static delegate* unmanaged<int, nint> _getTypeTraits;
    private static delegate* unmanaged<int, float*, void*, long, long, long, float*, nuint> _quantizeChunk;

    private static void EnsureBound()
    {
        LlamaCppReference.EnsureLoaded();
        lock (Gate)
        {
            if (_library != 0) return;
            // libllama has loaded libggml-base (its soname) from the runtime folder LLamaSharp chose: dlopen by
            // soname returns that same copy.
            if (!NativeLibrary.TryLoad("libggml-base.so", out var lib) && !NativeLibrary.TryLoad("ggml-base", out lib))
                Assert.Fail("libggml-base is not loaded although libllama is; cannot reach ggml's type functions");
            _getTypeTraits = (delegate* unmanaged<int, nint>)NativeLibrary.GetExport(lib, "ggml_get_type_traits");
            _quantizeChunk = (delegate* unmanaged<int, float*, void*, long, long, long, float*, nuint>)
                NativeLibrary.GetExport(lib, "ggml_quantize_chunk");
            _library = lib;
        }
    }

    /// <summary>ggml's type traits: name, block size, block bytes and the to_float function, checked against ours.</summary>
    private static nint ToFloat(uint typeId, string expectName, int expectBlock, int expectBytes)
    {
        EnsureBound();
        nint traits = _getTypeTraits((int)typeId);
        if (traits == 0) Assert.Fail($"ggml_get_type_traits({typeId}) returned null");
        // struct ggml_type_traits { const char *type_name; int64 blck_size; int64 blck_size_interleave; size_t type_size;
        //                           bool is_quantized; to_float; from_float_ref; }
        string? name = Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(traits, 0));
        long block = Marshal.ReadInt64(traits, 8);
        long bytes = Marshal.ReadInt64(traits, 24);
        nint toFloat = Marshal.ReadIntPtr(traits, 40);
        if (!string.Equals(name, expectName, StringComparison.OrdinalIgnoreCase) || block != expectBlock || bytes != expectBytes || toFloat == 0)
            Assert.Fail($"ggml's type traits for id {typeId} read as ({name}, block {block}, {bytes} bytes, to_float {toFloat}); " +
                        $"expected ({expectName}, {expectBlock}, {expectBytes}): the struct layout of this ggml differs");
        return toFloat;
    }

    /// <summary>ggml's dequantization of <paramref name="count"/> values of a GGML type (F32: the bytes as they are).</summary>
    public static float[] Dequantize(LongDep.Models.Quant.GgmlTypeInfo type, ReadOnlySpan<byte> blocks, int count)
    {
        if (type.Id == 0) // F32 has no to_float in ggml: its bytes are the values
            return MemoryMarshal.Cast<byte, float>(blocks).ToArray();
        nint fn = ToFloat(type.Id, type.Name, type.BlockElements, type.BlockBytes);
        if (count % type.BlockElements != 0 || (long)count / type.BlockElements * type.BlockBytes != blocks.Length)
            throw new ArgumentException($"{blocks.Length} bytes are not {count} values of {type.Name}");
        var result = new float[count];
        var toFloat = (delegate* unmanaged<void*, float*, long, void>)fn;
        fixed (byte* src = blocks)
        fixed (float* dst = result)
            toFloat(src, dst, count);
        return result;
    }

    /// <summary>
    /// ggml's quantization of <paramref name="rows"/> rows of <paramref name="perRow"/> values (no importance matrix),
    /// as llama-quantize runs it for one tensor.
    /// </summary>
    public static byte[] Quantize(LongDep.Models.Quant.GgmlTypeInfo type, float[] values, int rows, int perRow)
    {
        ToFloat(type.Id, type.Name, type.BlockElements, type.BlockBytes); // checks the type before use
        if ((long)rows * perRow != values.Length || perRow % type.BlockElements != 0)
            throw new ArgumentException($"{values.Length} values are not {rows} rows of {perRow} whole {type.Name} blocks");
        var result = new byte[(long)rows * perRow / type.BlockElements * type.BlockBytes];
        nuint written;
        fixed (float* src = values)
        fixed (byte* dst = result)
            written = _quantizeChunk((int)type.Id, src, dst, 0, rows, perRow, null);
        if ((long)written != result.Length) Assert.Fail($"ggml_quantize_chunk wrote {written} bytes of {type.Name}, expected {result.Length}");
        return result;
    }
}
