using System.Runtime.InteropServices;
using LongDep.Models;

namespace LongDep.Cuda.Twins;

/// <summary>
/// A host-memory stand-in for the GPU that runs each kernel's C# twin in place of the kernel and <see cref="GemmTwin"/>
/// in place of cuBLAS. It checks what the real GPU would silently get wrong: every pointer range a kernel or GEMM
/// touches must lie inside one live allocation, the launch geometry must cover the work the kernel's indexing expects,
/// and fresh allocations are filled with NaN bytes so that reading memory nobody wrote shows up in the results.
/// Used by the tests to run the whole CUDA forward and probes on a machine without a GPU.
/// </summary>
internal sealed unsafe class SimulatedBackend : GpuBackend
{
    private readonly SortedDictionary<ulong, long> live = new();
    private readonly Dictionary<string, int> launches = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, string> names = new(); // what each allocation holds (with the emulator)

    /// <summary>Bytes of 0xFF after every allocation when kernels are emulated.</summary>
    internal const int RedZoneBytes = 4096;
    private readonly object gate = new(); // a leaked buffer is freed from the finalizer thread
    private bool disposed;

    /// <param name="capacityBytes">Simulated device memory; allocations beyond it raise <see cref="CudaOutOfMemoryException"/>.</param>
    /// <param name="emulator">When given, kernels run from their CUDA source on <see cref="KernelEmulator"/> instead of
    /// their C# twins (GEMMs stay <see cref="GemmTwin"/>).</param>
    public SimulatedBackend(long capacityBytes = 8L << 30, int maxDynamicSharedBytes = 227 * 1024, KernelEmulator? emulator = null)
    {
        CapacityBytes = capacityBytes;
        MaxDynamicSharedBytes = maxDynamicSharedBytes;
        Emulator = emulator;
    }

    /// <summary>The kernel emulator that runs launches, or null when the C# twins do.</summary>
    public KernelEmulator? Emulator { get; }

    public override string Description => Emulator is null
        ? "simulated GPU (C# kernel twins on host memory)"
        : "emulated GPU (the CUDA kernels' source on CPU fibers, cuBLAS as a C# twin)";
    internal override int MaxDynamicSharedBytes { get; }
    public long CapacityBytes { get; }
    public long AllocatedBytes { get; private set; }
    public long PeakBytes { get; private set; }
    public int LiveAllocations => live.Count;
    public int GemmCount { get; private set; }
    /// <summary>How many times each kernel was launched.</summary>
    public IReadOnlyDictionary<string, int> Launches => launches;
    /// <summary>Called with each launch's kernel, grid and block before it runs (tests of the launch geometry).</summary>
    internal Action<KernelSpec, Dim3, Dim3>? LaunchObserver { get; set; }

    internal override ulong AllocateRaw(long bytes, string what, string hint)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        if (AllocatedBytes + bytes > CapacityBytes)
            throw new CudaOutOfMemoryException("cuMemAlloc_v2", bytes, CapacityBytes - AllocatedBytes, CapacityBytes, what, hint);
        // With the emulator, a red zone of NaN bytes follows each buffer: a kernel writing past the end is caught after
        // the launch, and one reading past it reads NaN.
        long redZone = Emulator is null ? 0 : RedZoneBytes;
        void* p = NativeMemory.AlignedAlloc((nuint)(bytes + redZone), 256);
        new Span<byte>(p, checked((int)(bytes + redZone))).Fill(0xFF); // NaN in every float lane: uninitialized reads become visible
        ulong address = (ulong)p;
        lock (gate)
        {
            if (redZone > 0) names[address] = what;
            live.Add(address, bytes);
            AllocatedBytes += bytes;
            PeakBytes = Math.Max(PeakBytes, AllocatedBytes);
        }
        return address;
    }

    internal override bool FreeRaw(ulong address)
    {
        lock (gate)
        {
            if (!live.Remove(address, out long bytes)) return false;
            names.Remove(address);
            AllocatedBytes -= bytes;
        }
        NativeMemory.AlignedFree((void*)address);
        return true;
    }

    /// <summary>A view of <paramref name="count"/> elements at <paramref name="address"/>, which must lie inside one live allocation.</summary>
    internal Span<T> View<T>(ulong address, long count, string what) where T : unmanaged
    {
        if (count < 0) throw new InvalidOperationException($"{what}: negative element count {count}");
        if (count == 0) return Span<T>.Empty;
        long bytes = count * sizeof(T);
        lock (gate)
        {
            foreach (var (start, length) in live)
            {
                if (address < start) break;
                if (address >= start + (ulong)length) continue;
                if (address + (ulong)bytes > start + (ulong)length)
                    throw new InvalidOperationException(
                        $"{what}: {count} x {typeof(T).Name} at 0x{address:x} runs {address + (ulong)bytes - (start + (ulong)length)} bytes " +
                        $"past the end of its allocation (0x{start:x}, {length} bytes)");
                return new Span<T>((void*)address, checked((int)count));
            }
        }
        throw new InvalidOperationException($"{what}: address 0x{address:x} is not inside any live device allocation");
    }

    /// <summary>A view from <paramref name="address"/> to the end of its allocation.</summary>
    internal Span<T> ViewToEnd<T>(ulong address, string what) where T : unmanaged
    {
        long available = -1;
        lock (gate)
        {
            foreach (var (start, length) in live)
                if (address >= start && address < start + (ulong)length)
                    available = (long)(start + (ulong)length - address);
        }
        if (available >= 0) return View<T>(address, available / sizeof(T), what);
        throw new InvalidOperationException($"{what}: address 0x{address:x} is not inside any live device allocation");
    }

    internal override void CopyToDevice(ulong destination, void* source, long bytes) =>
        new ReadOnlySpan<byte>(source, checked((int)bytes)).CopyTo(View<byte>(destination, bytes, "host-to-device copy"));

    internal override void CopyToHost(void* destination, ulong source, long bytes) =>
        View<byte>(source, bytes, "device-to-host copy").CopyTo(new Span<byte>(destination, checked((int)bytes)));

    internal override void CopyDeviceToDevice(ulong destination, ulong source, long bytes) =>
        View<byte>(source, bytes, "device copy source").CopyTo(View<byte>(destination, bytes, "device copy destination"));

    internal override void Memset8(ulong destination, byte value, long count) => View<byte>(destination, count, "memset").Fill(value);

    internal override void Memset32(ulong destination, uint value, long count) => View<uint>(destination, count, "memset").Fill(value);

    internal override void Synchronize() { }

    internal override (long Free, long Total) MemoryInfo() => (CapacityBytes - AllocatedBytes, CapacityBytes);

    internal override void Gemm(in GemmCall g)
    {
        g.Validate();
        GemmCount++;
        if (g.M == 0 || g.N == 0) return;
        for (int batch = 0; batch < g.BatchCount; batch++)
        {
            long aCount = (long)g.Lda * ((g.TransA ? g.M : g.K) - 1) + (g.TransA ? g.K : g.M);
            long bCount = (long)g.Ldb * ((g.TransB ? g.K : g.N) - 1) + (g.TransB ? g.N : g.K);
            long cCount = (long)g.Ldc * (g.N - 1) + g.M;
            var a = ReadTyped(g.A.AddBytes(batch * g.StrideA * g.AType.ElementSize()).Address, aCount, g.AType, "GEMM A");
            var b = ReadTyped(g.B.AddBytes(batch * g.StrideB * g.BType.ElementSize()).Address, bCount, g.BType, "GEMM B");
            var cAddress = g.C.AddBytes(batch * g.StrideC * g.CType.ElementSize()).Address;
            if (g.CType == CudaPrecision.F32)
            {
                GemmTwin.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, View<float>(cAddress, cCount, "GEMM C"), g.Ldc);
                continue;
            }
            // f16/bf16 C: computed in float32 and rounded once, as cuBLAS does; the elements between the columns
            // (ldc > m) go back unchanged (an f16/bf16 value survives the float32 round trip).
            var c = ReadTyped(cAddress, cCount, g.CType, "GEMM C");
            GemmTwin.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc);
            WriteTyped(cAddress, c, g.CType, "GEMM C");
        }
    }

    private float[] ReadTyped(ulong address, long count, CudaPrecision type, string what)
    {
        var raw = View<byte>(address, count * type.ElementSize(), what);
        var result = new float[count];
        ElementTypes.ToFloat(raw, type, result);
        return result;
    }

    private void WriteTyped(ulong address, ReadOnlySpan<float> values, CudaPrecision type, string what) =>
        ElementTypes.FromFloat(values, type, View<byte>(address, (long)values.Length * type.ElementSize(), what));

    internal override void Launch(KernelSpec kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<object> args)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        KernelArgs.Validate(kernel, args);
        if (grid.Count == 0 || block.Count == 0 || block.Count > 1024)
            throw new InvalidOperationException($"kernel {kernel.Name}: invalid launch grid {grid} block {block}");
        if (sharedBytes > MaxDynamicSharedBytes)
            throw new InvalidOperationException($"kernel {kernel.Name}: {sharedBytes} bytes of shared memory exceed {MaxDynamicSharedBytes}");
        launches[kernel.Name] = launches.GetValueOrDefault(kernel.Name) + 1;
        LaunchObserver?.Invoke(kernel, grid, block);
        if (Emulator is not null)
        {
            // Pointers must at least start inside live allocations (the emulated kernel reads host memory directly).
            for (int i = 0; i < args.Length; i++)
                if (kernel.Parameters[i] == 'p' && KernelArgs.AddressOf(args[i]) is var address && address != 0)
                    ViewToEnd<byte>(address, $"kernel {kernel.Name} argument {i}");
            Emulator.Launch(kernel, grid, block, sharedBytes, args);
            CheckRedZones(kernel.Name);
            return;
        }
        var a = new Args(this, kernel, args);
        switch (kernel.Name)
        {
            case "embed_gather_f32":
            case "embed_gather_f16":
            case "embed_gather_bf16":
                RunEmbed(a, grid, kernel.Name switch { "embed_gather_f32" => CudaPrecision.F32, "embed_gather_f16" => CudaPrecision.F16, _ => CudaPrecision.BF16 });
                break;
            case "rmsnorm_f32":
            case "rmsnorm_f16":
            case "rmsnorm_bf16":
                RunRmsNorm(a, grid, block, OutputType(kernel.Name));
                break;
            case "embed_add_positions":
            {
                int rows = a.Int(3), dim = a.Int(4), offset = a.Int(5), tableRows = a.Int(6);
                Need(kernel, grid.X >= rows, $"grid.x {grid.X} < rows {rows}");
                EmbeddingTwin.AddPositions(a.Ints(0, rows), a.Floats(1, (long)tableRows * dim), a.Floats(2, (long)rows * dim), rows, dim,
                    offset, tableRows);
                break;
            }
            case "rmsnorm_add_f32":
            {
                int rows = a.Int(3), n = a.Int(4);
                Need(kernel, grid.X >= rows, $"grid.x {grid.X} < rows {rows}");
                Need(kernel, block.X % 32 == 0 && block.Y == 1 && block.Z == 1, $"block {block} must be 1-D with a multiple of 32 threads");
                RmsNormTwin.ApplyAdd(a.Floats(0, (long)rows * n).ToArray(), a.Floats(1, n), a.Floats(2, (long)rows * n), rows, n, a.Float(5));
                break;
            }
            case "layernorm_f32":
            case "layernorm_f16":
            case "layernorm_bf16":
            {
                int rows = a.Int(4), n = a.Int(5);
                Need(kernel, grid.X >= rows, $"grid.x {grid.X} < rows {rows}");
                Need(kernel, block.X % 32 == 0 && block.Y == 1 && block.Z == 1, $"block {block} must be 1-D with a multiple of 32 threads");
                var y = new float[(long)rows * n];
                LayerNormTwin.Apply(a.Floats(0, (long)rows * n), a.Floats(1, n), a.Floats(2, n), y, rows, n, a.Float(6));
                WriteTyped(a.Ptr(3), y, OutputType(kernel.Name), "layernorm y");
                break;
            }
            case "qk_rmsnorm":
                RunQkNorm(a, grid, block);
                break;
            case "rope_qk":
                RunRope(a, grid);
                break;
            case "add_bias_f32":
            {
                int rows = a.Int(2), n = a.Int(3);
                ElementwiseTwin.AddBias(a.Floats(0, (long)rows * n), a.Floats(1, n), rows, n);
                break;
            }
            case "convert_f32_to_f16":
            case "convert_f32_to_bf16":
            {
                long n = a.Long(2);
                WriteTyped(a.Ptr(1), a.Floats(0, n), kernel.Name.EndsWith("bf16", StringComparison.Ordinal) ? CudaPrecision.BF16 : CudaPrecision.F16, "convert dst");
                break;
            }
            case "swiglu_f32":
            case "swiglu_f16":
            case "swiglu_bf16":
            case "geglu_tanh_f32":
            case "geglu_tanh_f16":
            case "geglu_tanh_bf16":
            {
                long n = a.Long(3);
                var type = OutputType(kernel.Name); // gate, up and out share the type
                var result = new float[n];
                var gate = ReadTyped(a.Ptr(0), n, type, $"{kernel.Name} gate");
                var up = ReadTyped(a.Ptr(1), n, type, $"{kernel.Name} up");
                if (kernel.Name.StartsWith("swiglu", StringComparison.Ordinal)) ElementwiseTwin.SwiGlu(gate, up, result, n);
                else ElementwiseTwin.GeGluTanh(gate, up, result, n);
                WriteTyped(a.Ptr(2), result, type, $"{kernel.Name} out");
                break;
            }
            case "bias_relu_f32":
            case "bias_relu_f16":
            case "bias_relu_bf16":
            {
                int rows = a.Int(3), n = a.Int(4);
                var result = new float[(long)rows * n];
                ElementwiseTwin.BiasRelu(a.Floats(0, (long)rows * n), a.Ptr(1) == 0 ? default : a.Floats(1, n), result, rows, n);
                WriteTyped(a.Ptr(2), result, OutputType(kernel.Name), "bias_relu out");
                break;
            }
            case "attention_fwd_f32":
            case "attention_fwd_f16":
            case "attention_fwd_bf16":
                RunAttention(a, grid, block, sharedBytes, OutputType(kernel.Name));
                break;
            case "attention_mma64_f32":
            case "attention_mma64_f16":
            case "attention_mma64_bf16":
            case "attention_mma128_f32":
            case "attention_mma128_f16":
            case "attention_mma128_bf16":
                RunAttention(a, grid, block, sharedBytes, OutputType(kernel.Name), TensorCoreDim(kernel.Name));
                break;
            case "kv_pack_f16":
                RunKvPack(a, grid, block, sharedBytes);
                break;
            case "attention_mma64_kv16_f32":
            case "attention_mma64_kv16_f16":
            case "attention_mma64_kv16_bf16":
            case "attention_mma128_kv16_f32":
            case "attention_mma128_kv16_f16":
            case "attention_mma128_kv16_bf16":
                RunAttentionKv16(a, grid, block, sharedBytes, OutputType(kernel.Name), TensorCoreDim(kernel.Name));
                break;
            case "attention_mma64_kv16_wide_f32":
            case "attention_mma64_kv16_wide_f16":
            case "attention_mma64_kv16_wide_bf16":
                RunAttentionKv16(a, grid, block, sharedBytes, OutputType(kernel.Name), TensorCoreDim(kernel.Name), blockRows: 128);
                break;
            case "attention_mma64_kv16_wide8_f32":
            case "attention_mma64_kv16_wide8_f16":
            case "attention_mma64_kv16_wide8_bf16":
                RunAttentionKv16(a, grid, block, sharedBytes, OutputType(kernel.Name), TensorCoreDim(kernel.Name), blockRows: 256, warps: 8);
                break;
            case "pfs_row_stats":
                RunPfsRowStats(a, grid, block, sharedBytes);
                break;
            case "pfs_row_stats_mma64":
            case "pfs_row_stats_mma128":
                RunPfsRowStats(a, grid, block, sharedBytes, TensorCoreDim(kernel.Name));
                break;
            case "pfs_row_stats_mma64_wide":
                RunPfsRowStats(a, grid, block, sharedBytes, TensorCoreDim(kernel.Name), blockRows: 128);
                break;
            case "pfs_row_stats_mma64_kv16_wide":
                RunPfsRowStats(a, grid, block, sharedBytes, TensorCoreDim(kernel.Name), blockRows: 128, packedKeys: true);
                break;
            case "pfs_row_stats_mma64_kv16_wide8":
                RunPfsRowStats(a, grid, block, sharedBytes, TensorCoreDim(kernel.Name), blockRows: 128, packedKeys: true, headsPerBlock: 2);
                break;
            case "pfs_column_mass":
                RunPfsColumnMass(a, grid, block, sharedBytes);
                break;
            case "pfs_column_mass_mma64":
            case "pfs_column_mass_mma128":
                RunPfsColumnMass(a, grid, block, sharedBytes, TensorCoreDim(kernel.Name));
                break;
            case "pfs_column_mass_mma64_wide":
                RunPfsColumnMass(a, grid, block, sharedBytes, TensorCoreDim(kernel.Name), blockKeys: 256);
                break;
            case "pfs_window_sum":
            {
                int nItems = a.Int(5), T = a.Int(6);
                Need(kernel, grid.X * (long)block.X >= nItems, $"grid.x*block.x = {grid.X * (long)block.X} < nItems {nItems}");
                var itemSpan = a.Ints(1, nItems);
                int spans = nItems == 0 ? 0 : itemSpan.ToArray().Max() + 1;
                PfsTwin.WindowSum(a.Floats(0, (long)spans * T), itemSpan, a.Ints(2, nItems), a.Ints(3, nItems),
                    a.Doubles(4, nItems), nItems, T);
                break;
            }
            case "loss_row_nll":
            {
                int rows = a.Int(3), vocab = a.Int(4);
                Need(kernel, grid.X >= rows, $"grid.x {grid.X} < rows {rows}");
                Need(kernel, block.X % 32 == 0, $"block.x {block.X} is not a multiple of 32");
                LossTwin.RowNll(a.Floats(0, (long)rows * vocab), a.Ints(1, rows), a.Floats(2, rows), rows, vocab, a.Float(5));
                break;
            }
            case "loss_segment_sum":
            {
                int nSeg = a.Int(6);
                Need(kernel, grid.X * (long)block.X >= nSeg, $"grid.x*block.x < nSeg {nSeg}");
                var starts = a.Ints(2, nSeg);
                var lens = a.Ints(3, nSeg);
                int rows = 0;
                for (int i = 0; i < nSeg; i++) rows = Math.Max(rows, starts[i] + lens[i]);
                LossTwin.SegmentSum(a.Floats(0, rows), a.Ints(1, rows), starts, lens, a.Doubles(4, nSeg), a.Ints(5, nSeg), nSeg);
                break;
            }
            default:
                throw new InvalidOperationException($"the simulator has no twin for kernel {kernel.Name}");
        }
    }

    /// <summary>Throws when a launch wrote into the red zone after any live allocation.</summary>
    private void CheckRedZones(string kernel)
    {
        lock (gate)
        {
            foreach (var (start, length) in live)
            {
                var zone = new ReadOnlySpan<byte>((void*)(start + (ulong)length), RedZoneBytes);
                int at = zone.IndexOfAnyExcept((byte)0xFF);
                if (at < 0) continue;
                throw new InvalidOperationException(
                    $"kernel {kernel} wrote past the end of an allocation ({names.GetValueOrDefault(start, "?")}, {length} bytes at 0x{start:x}): " +
                    $"byte {length + at} of it changed");
            }
        }
    }

    private static CudaPrecision OutputType(string name) =>
        name.EndsWith("_f32", StringComparison.Ordinal) ? CudaPrecision.F32
        : name.EndsWith("_bf16", StringComparison.Ordinal) ? CudaPrecision.BF16
        : CudaPrecision.F16;

    private void RunEmbed(Args a, Dim3 grid, CudaPrecision tableType)
    {
        int rows = a.Int(3), dim = a.Int(4), vocab = a.Int(5);
        Need(a.Kernel, grid.X >= rows, $"grid.x {grid.X} < rows {rows}");
        var table = ReadTyped(a.Ptr(1), (long)vocab * dim, tableType, "embedding table");
        EmbeddingTwin.Gather(a.Ints(0, rows), table, a.Floats(2, (long)rows * dim), rows, dim, vocab, a.Float(6));
    }

    private void RunRmsNorm(Args a, Dim3 grid, Dim3 block, CudaPrecision output)
    {
        int rows = a.Int(3), n = a.Int(4);
        Need(a.Kernel, grid.X >= rows, $"grid.x {grid.X} < rows {rows}");
        Need(a.Kernel, block.X % 32 == 0 && block.Y == 1 && block.Z == 1, $"block {block} must be 1-D with a multiple of 32 threads");
        var y = new float[(long)rows * n];
        RmsNormTwin.Apply(a.Floats(0, (long)rows * n), a.Floats(1, n), y, rows, n, a.Float(5));
        WriteTyped(a.Ptr(2), y, output, "rmsnorm y");
    }

    private void RunRope(Args a, Dim3 grid)
    {
        int rows = a.Int(4), heads = a.Int(5), kvHeads = a.Int(6), headDim = a.Int(7), qStride = a.Int(8), kStride = a.Int(9), style = a.Int(10);
        bool hasK = a.Ptr(1) != 0;
        Need(a.Kernel, grid.X >= rows, $"grid {grid} does not cover {rows} rows");
        Need(a.Kernel, style is 0 or 1, $"style {style} is neither 0 (adjacent pairs) nor 1 (halves)");
        Need(a.Kernel, headDim is > 0 and <= 256 && headDim % 2 == 0, $"head dimension {headDim} is not even in (0, 256] (the shared sine/cosine table holds 128 pairs)");
        Need(a.Kernel, heads * headDim <= qStride, $"heads*headDim {heads * headDim} exceeds the q row stride {qStride}");
        Need(a.Kernel, !hasK || kvHeads * headDim <= kStride, $"kvHeads*headDim {kvHeads * headDim} exceeds the k row stride {kStride}");
        var rope = style == 0 ? RopeStyle.AdjacentPairs : RopeStyle.Halves;
        var positions = a.Ints(2, rows);
        var invFreq = a.Doubles(3, headDim / 2);
        long qCount = rows == 0 ? 0 : (long)(rows - 1) * qStride + heads * headDim;
        float scale = a.Float(11);
        RopeTwin.Apply(a.Floats(0, qCount), positions, invFreq, rows, heads, headDim, qStride, rope, scale);
        if (hasK && kvHeads > 0)
        {
            long kCount = rows == 0 ? 0 : (long)(rows - 1) * kStride + kvHeads * headDim;
            RopeTwin.Apply(a.Floats(1, kCount), positions, invFreq, rows, kvHeads, headDim, kStride, rope, scale);
        }
    }

    private void RunQkNorm(Args a, Dim3 grid, Dim3 block)
    {
        int rows = a.Int(4), heads = a.Int(5), kvHeads = a.Int(6), headDim = a.Int(7), qStride = a.Int(8), kStride = a.Int(9);
        float eps = a.Float(10), qScale = a.Float(11);
        bool hasK = a.Ptr(1) != 0;
        long vectors = (long)rows * (heads + (hasK ? kvHeads : 0));
        Need(a.Kernel, block.X % 32 == 0 && block.Y == 1 && block.Z == 1, $"block {block} must be 1-D with a multiple of 32 threads");
        Need(a.Kernel, grid.X * (long)(block.X / 32) >= vectors, $"grid {grid} of {block.X / 32} warps does not cover {vectors} head vectors");
        Need(a.Kernel, headDim is > 0 and <= 256, $"head dimension {headDim} is not in (0, 256] (8 elements a lane)");
        Need(a.Kernel, heads * headDim <= qStride && (!hasK || kvHeads * headDim <= kStride), "the heads do not fit in the row strides");
        long qCount = rows == 0 ? 0 : (long)(rows - 1) * qStride + heads * headDim;
        RmsNormTwin.HeadNorm(a.Floats(0, qCount), a.Floats(2, headDim), rows, heads, headDim, qStride, eps, qScale);
        if (hasK && kvHeads > 0)
        {
            long kCount = rows == 0 ? 0 : (long)(rows - 1) * kStride + kvHeads * headDim;
            RmsNormTwin.HeadNorm(a.Floats(1, kCount), a.Floats(3, headDim), rows, kvHeads, headDim, kStride, eps);
        }
    }

    /// <summary>The head dimension a tensor-core kernel is built for (attention_mma64_f16 → 64), or 0 for a scalar kernel.</summary>
    private static int TensorCoreDim(string name) => name.Contains("mma128", StringComparison.Ordinal) ? 128
        : name.Contains("mma64", StringComparison.Ordinal) ? 64 : 0;

    /// <param name="tensorCoreDim">0 for attention_fwd_*; 64 or 128 for attention_mma*: 64-row blocks, f16-rounded inputs.</param>
    private void RunAttention(Args a, Dim3 grid, Dim3 block, int sharedBytes, CudaPrecision output, int tensorCoreDim = 0)
    {
        int nSeq = a.Int(7), seqLen = a.Int(8), prefixLen = a.Int(9), heads = a.Int(10), kvHeads = a.Int(11), d = a.Int(12);
        float scale = a.Float(13);
        int window = a.Int(14);
        float softCap = tensorCoreDim > 0 ? 0f : a.Float(15);
        Need(a.Kernel, window >= 0 && softCap >= 0, $"window {window} and soft-cap {softCap} must not be negative");
        int blockRows = tensorCoreDim > 0 ? 64 : 16;
        Need(a.Kernel, grid.X >= (seqLen + blockRows - 1) / blockRows && grid.Y >= heads && grid.Z >= nSeq,
            $"grid {grid} does not cover ({(seqLen + blockRows - 1) / blockRows}, {heads}, {nSeq})");
        Need(a.Kernel, block.X == 128 && block.Y == 1 && block.Z == 1, $"block {block} must be (128, 1, 1): 4 warps");
        Need(a.Kernel, d % 2 == 0 && d <= 256, $"head dimension {d} must be even and at most 256");
        Need(a.Kernel, tensorCoreDim == 0 || d == tensorCoreDim, $"head dimension {d} but the kernel is built for {tensorCoreDim}");
        Need(a.Kernel, kvHeads > 0 && heads % kvHeads == 0, $"heads {heads} not a multiple of kvHeads {kvHeads}");
        int needShared = tensorCoreDim > 0 ? (64 * (d + 8) + d * 72) * 2 : (32 * (d + 1) + 32 * d + 16 * d) * 4;
        Need(a.Kernel, sharedBytes >= needShared, $"shared memory {sharedBytes} < {needShared} needed for head dimension {d}");
        if (tensorCoreDim > 0)
            for (int i = 0; i < 5; i++)
                Need(a.Kernel, Ptr8(a.Ptr(i)), $"pointer argument {i} is not 8-byte aligned (float2 loads)");
        long rows = (long)nSeq * seqLen;
        ReadOnlySpan<float> kPrefix = default, vPrefix = default;
        ReadOnlySpan<int> prefixStart = default;
        if (prefixLen > 0)
        {
            prefixStart = a.Ints(5, nSeq);
            kPrefix = ViewToEnd<float>(a.Ptr(3), $"{a.Kernel.Name} kPrefix");
            vPrefix = ViewToEnd<float>(a.Ptr(4), $"{a.Kernel.Name} vPrefix");
            long need = 0;
            foreach (int s in prefixStart)
            {
                Need(a.Kernel, s >= 0, $"negative prefix start {s}");
                need = Math.Max(need, ((long)s + prefixLen) * kvHeads * d);
            }
            Need(a.Kernel, kPrefix.Length >= need && vPrefix.Length >= need, "a prefix row lies past the end of the prefix buffers");
        }
        var result = new float[rows * heads * d];
        if (tensorCoreDim > 0)
            AttentionTwin.Forward(TensorCoreInputs.Query(a.Floats(0, rows * heads * d), scale),
                TensorCoreInputs.Round(a.Floats(1, rows * kvHeads * d)), TensorCoreInputs.Round(a.Floats(2, rows * kvHeads * d)),
                TensorCoreInputs.Round(kPrefix), TensorCoreInputs.Round(vPrefix), prefixStart, result, nSeq, seqLen, prefixLen,
                heads, kvHeads, d, scale, window);
        else
            AttentionTwin.Forward(a.Floats(0, rows * heads * d), a.Floats(1, rows * kvHeads * d), a.Floats(2, rows * kvHeads * d),
                kPrefix, vPrefix, prefixStart, result, nSeq, seqLen, prefixLen, heads, kvHeads, d, scale, window, softCap);
        WriteTyped(a.Ptr(6), result, output, "attention out");
    }

    /// <summary>kv_pack_f16: k16 [nSeq][padded][kvHeads*d] and vt16 [nSeq][kvHeads][d][padded] in f16, zero past seqLen.</summary>
    private void RunKvPack(Args a, Dim3 grid, Dim3 block, int sharedBytes)
    {
        int nSeq = a.Int(4), seqLen = a.Int(5), padded = a.Int(6), kvHeads = a.Int(7), d = a.Int(8);
        Need(a.Kernel, padded % 64 == 0 && padded >= seqLen, $"padded length {padded} is not a multiple of 64 covering {seqLen}");
        Need(a.Kernel, grid.X >= padded / 64 && grid.Y >= kvHeads && grid.Z >= nSeq, $"grid {grid} does not cover ({padded / 64}, {kvHeads}, {nSeq})");
        Need(a.Kernel, block.X % 32 == 0 && block.Y == 1 && block.Z == 1, $"block {block} must be 1-D with a multiple of 32 threads");
        Need(a.Kernel, sharedBytes >= 64 * (d + 1) * 4, $"shared memory {sharedBytes} < {64 * (d + 1) * 4} for head dimension {d}");
        int kvDim = kvHeads * d;
        var k = a.Floats(0, (long)nSeq * seqLen * kvDim);
        var v = a.Floats(1, (long)nSeq * seqLen * kvDim);
        var k16 = new float[(long)nSeq * padded * kvDim];
        var vt16 = new float[(long)nSeq * padded * kvDim];
        for (int seq = 0; seq < nSeq; seq++)
        for (int t = 0; t < seqLen; t++)
        for (int h = 0; h < kvHeads; h++)
        for (int c = 0; c < d; c++)
        {
            long at = ((long)seq * seqLen + t) * kvDim + h * d + c;
            k16[((long)seq * padded + t) * kvDim + h * d + c] = k[(int)at];
            vt16[(((long)seq * kvHeads + h) * d + c) * padded + t] = v[(int)at];
        }
        WriteTyped(a.Ptr(2), k16, CudaPrecision.F16, "kv_pack k16");
        WriteTyped(a.Ptr(3), vt16, CudaPrecision.F16, "kv_pack vt16");
    }

    /// <summary>attention_mma*_kv16_*: unpacks the f16 keys and values, then the tensor-core attention twin (no prefix).</summary>
    /// <param name="blockRows">Query rows per block: 64, or 128 for the wide kernels (32 rows per warp), 256 for wide8; the outputs are the same.</param>
    /// <param name="warps">Warps per block (block.x / 32): 4, or 8 for wide8.</param>
    private void RunAttentionKv16(Args a, Dim3 grid, Dim3 block, int sharedBytes, CudaPrecision output, int tensorCoreDim, int blockRows = 64,
        int warps = 4)
    {
        int nSeq = a.Int(4), seqLen = a.Int(5), padded = a.Int(6), heads = a.Int(7), kvHeads = a.Int(8), d = a.Int(9);
        float scale = a.Float(10);
        int window = a.Int(11);
        Need(a.Kernel, window >= 0, $"window {window} must not be negative");
        Need(a.Kernel, d == tensorCoreDim, $"head dimension {d} but the kernel is built for {tensorCoreDim}");
        Need(a.Kernel, kvHeads > 0 && heads % kvHeads == 0, $"heads {heads} not a multiple of kvHeads {kvHeads}");
        Need(a.Kernel, padded % 64 == 0 && padded >= seqLen, $"padded length {padded} is not a multiple of 64 covering {seqLen}");
        Need(a.Kernel, grid.X >= (seqLen + blockRows - 1) / blockRows && grid.Y >= heads && grid.Z >= nSeq,
            $"grid {grid} does not cover ({(seqLen + blockRows - 1) / blockRows}, {heads}, {nSeq})");
        Need(a.Kernel, block.X == 32 * warps && block.Y == 1 && block.Z == 1, $"block {block} must be ({32 * warps}, 1, 1): {warps} warps");
        int needShared = 2 * (64 * (d + 8) + d * 72) * 2;
        Need(a.Kernel, sharedBytes >= needShared, $"shared memory {sharedBytes} < {needShared} needed for head dimension {d}");
        Need(a.Kernel, Ptr8(a.Ptr(0)) && a.Ptr(1) % 16 == 0 && a.Ptr(2) % 16 == 0, "q must be 8-byte and k16, vt16 16-byte aligned");
        int kvDim = kvHeads * d;
        long rows = (long)nSeq * seqLen;
        var k16 = ReadTyped(a.Ptr(1), (long)nSeq * padded * kvDim, CudaPrecision.F16, $"{a.Kernel.Name} k16");
        var vt16 = ReadTyped(a.Ptr(2), (long)nSeq * padded * kvDim, CudaPrecision.F16, $"{a.Kernel.Name} vt16");
        var k = new float[rows * kvDim];
        var v = new float[rows * kvDim];
        for (int seq = 0; seq < nSeq; seq++)
        for (int h = 0; h < kvHeads; h++)
        for (int c = 0; c < d; c++)
        {
            long vRow = (((long)seq * kvHeads + h) * d + c) * padded;
            for (int t = 0; t < seqLen; t++)
            {
                long at = ((long)seq * seqLen + t) * kvDim + h * d + c;
                k[at] = k16[((long)seq * padded + t) * kvDim + h * d + c];
                v[at] = vt16[vRow + t];
            }
            for (int t = seqLen; t < padded; t++)
                Need(a.Kernel, vt16[vRow + t] == 0, "values past the sequence must be zero in the packed layout (their P is 0, 0 x NaN is not)");
        }
        var result = new float[rows * heads * d];
        AttentionTwin.Forward(TensorCoreInputs.Query(a.Floats(0, rows * heads * d), scale), k, v, default, default, default, result,
            nSeq, seqLen, 0, heads, kvHeads, d, scale, window);
        WriteTyped(a.Ptr(3), result, output, "attention out");
    }

    /// <param name="blockRows">Span rows per block when not the default (16 scalar, 64 tensor cores): 128 for the wide kernel.</param>
    /// <param name="packedKeys">k is kv_pack_f16's k16 (f16, one sequence) rather than float32 (the kv16 kernels).</param>
    /// <param name="headsPerBlock">Heads of one GQA group per block (2 for the 8-warp kernel: grid.y = heads / 2).</param>
    private void RunPfsRowStats(Args a, Dim3 grid, Dim3 block, int sharedBytes, int tensorCoreDim = 0, int blockRows = 0,
        bool packedKeys = false, int headsPerBlock = 1)
    {
        int nSpans = a.Int(6), maxSpanLen = a.Int(7), heads = a.Int(8), kvHeads = a.Int(9), d = a.Int(10);
        if (blockRows == 0) blockRows = tensorCoreDim > 0 ? 64 : 16;
        int threads = 128 * headsPerBlock;
        Need(a.Kernel, kvHeads > 0 && heads % kvHeads == 0 && (heads / kvHeads) % headsPerBlock == 0,
            $"heads {heads} / kvHeads {kvHeads} is not a multiple of {headsPerBlock} heads per block");
        Need(a.Kernel, grid.X >= (maxSpanLen + blockRows - 1) / blockRows && grid.Y >= heads / headsPerBlock && grid.Z >= nSpans,
            $"grid {grid} does not cover ({(maxSpanLen + blockRows - 1) / blockRows}, {heads / headsPerBlock}, {nSpans})");
        Need(a.Kernel, block.X == threads && block.Y == 1 && block.Z == 1, $"block {block} must be ({threads}, 1, 1)");
        Need(a.Kernel, tensorCoreDim == 0 || d == tensorCoreDim, $"head dimension {d} but the kernel is built for {tensorCoreDim}");
        int needShared = tensorCoreDim > 0 ? (packedKeys ? 2 : 1) * 64 * (d + 8) * 2 : (32 * (d + 1) + 16 * d) * 4;
        Need(a.Kernel, sharedBytes >= needShared, $"shared memory {sharedBytes} < {needShared}");
        var (starts, ends, lastRow) = Spans(a, nSpans, maxSpanLen);
        float[] q, k;
        if (packedKeys)
        {
            Need(a.Kernel, Ptr8(a.Ptr(0)) && a.Ptr(1) % 16 == 0, "q must be 8-byte and k16 16-byte aligned");
            q = TensorCoreInputs.Query(a.Floats(0, (long)lastRow * heads * d), a.Float(11));
            // Every 64-key tile before a span's start is copied whole: the buffer must hold the keys up to that tile's end.
            int maxStart = starts.Length == 0 ? 0 : starts.Max();
            long keysCopied = (maxStart + 63) / 64 * 64L;
            View<ushort>(a.Ptr(1), keysCopied * kvHeads * d, $"{a.Kernel.Name} k16 (whole tiles)"); // the range check only
            k = ReadTyped(a.Ptr(1), (long)lastRow * kvHeads * d, CudaPrecision.F16, $"{a.Kernel.Name} k16");
        }
        else
            (q, k) = PfsInputs(a, lastRow, heads, kvHeads, d, a.Float(11), tensorCoreDim);
        int window = a.Int(12);
        float softCap = tensorCoreDim > 0 ? 0f : a.Float(13);
        Need(a.Kernel, window >= 0 && softCap >= 0, $"window {window} and soft-cap {softCap} must not be negative");
        PfsTwin.RowStats(q, k, starts, ends,
            a.Floats(4, (long)nSpans * heads * maxSpanLen), a.Floats(5, (long)nSpans * heads * maxSpanLen),
            nSpans, maxSpanLen, heads, kvHeads, d, a.Float(11), window, softCap);
    }

    /// <param name="blockKeys">Key columns per block when not the default (64 scalar, 128 tensor cores): 256 for the wide kernel.</param>
    private void RunPfsColumnMass(Args a, Dim3 grid, Dim3 block, int sharedBytes, int tensorCoreDim = 0, int blockKeys = 0)
    {
        int tileStride = a.Int(8), nSpans = a.Int(9), maxSpanLen = a.Int(10), T = a.Int(11), heads = a.Int(12), kvHeads = a.Int(13), d = a.Int(14);
        var (starts, ends, lastRow) = Spans(a, nSpans, maxSpanLen);
        if (blockKeys == 0) blockKeys = tensorCoreDim > 0 ? 128 : 64;
        int blockTiles = blockKeys / PfsKeyTiles.TileKeys;
        // the tiles of the longest span: listed, or all those below its start
        int most = 0;
        uint[] keyTiles = [];
        if (a.Ptr(7) == 0)
        {
            foreach (int s in starts) most = Math.Max(most, (s + PfsKeyTiles.TileKeys - 1) / PfsKeyTiles.TileKeys);
        }
        else
        {
            Need(a.Kernel, tileStride >= 1, $"tile list rows of {tileStride} ints");
            var rows = a.Ints(7, (long)nSpans * tileStride).ToArray();
            for (int sp = 0; sp < nSpans; sp++)
            {
                int count = rows[sp * tileStride];
                Need(a.Kernel, count >= 0 && count < tileStride, $"span {sp}'s tile list holds {count} tiles in a row of {tileStride} ints");
                for (int i = 0; i < count; i++)
                {
                    int tile = rows[sp * tileStride + 1 + i];
                    Need(a.Kernel, tile * PfsKeyTiles.TileKeys < starts[sp] && (i == 0 || tile > rows[sp * tileStride + i]),
                        $"span {sp}'s tile list is not increasing tiles below its start {starts[sp]} at position {i} (tile {tile})");
                }
                most = Math.Max(most, count);
            }
            keyTiles = PfsKeyTiles.MaskOf(rows, tileStride, nSpans, T);
        }
        Need(a.Kernel, grid.X >= (most + blockTiles - 1) / blockTiles && grid.Y >= nSpans,
            $"grid {grid} does not cover ({(most + blockTiles - 1) / blockTiles}, {nSpans})");
        Need(a.Kernel, block.X == 256 && block.Y == 1 && block.Z == 1, $"block {block} must be (256, 1, 1)");
        Need(a.Kernel, lastRow <= T, $"a span ends at {lastRow}, past T = {T}");
        Need(a.Kernel, tensorCoreDim == 0 || d == tensorCoreDim, $"head dimension {d} but the kernel is built for {tensorCoreDim}");
        int needShared = tensorCoreDim > 0 ? 64 * (d + 8) * 2 + 2 * 64 * 4 : (64 * (d + 1) + 16 * d + 4 * 64) * 4;
        Need(a.Kernel, sharedBytes >= needShared, $"shared memory {sharedBytes} < {needShared}");
        var (q, k) = PfsInputs(a, lastRow, heads, kvHeads, d, a.Float(15), tensorCoreDim);
        int window = a.Kernel.ParameterCount > 16 ? a.Int(16) : 0; // the wide kernel has no window
        float softCap = tensorCoreDim > 0 ? 0f : a.Float(17);
        Need(a.Kernel, window >= 0 && softCap >= 0, $"window {window} and soft-cap {softCap} must not be negative");
        PfsTwin.ColumnMass(q, k, starts, ends,
            a.Floats(4, (long)nSpans * heads * maxSpanLen), a.Floats(5, (long)nSpans * heads * maxSpanLen),
            a.Floats(6, (long)nSpans * T), nSpans, maxSpanLen, T, heads, kvHeads, d, a.Float(15), keyTiles, window, softCap);
    }

    /// <summary>q and k of a PFS launch: as stored, or rounded the way the tensor-core kernels round them.</summary>
    private static (float[] Q, float[] K) PfsInputs(Args a, int lastRow, int heads, int kvHeads, int d, float scale, int tensorCoreDim)
    {
        var q = a.Floats(0, (long)lastRow * heads * d);
        var k = a.Floats(1, (long)lastRow * kvHeads * d);
        if (tensorCoreDim == 0) return (q.ToArray(), k.ToArray());
        Need(a.Kernel, Ptr8(a.Ptr(0)) && Ptr8(a.Ptr(1)), "q and k must be 8-byte aligned (float2 loads)");
        return (TensorCoreInputs.Query(q, scale), TensorCoreInputs.Round(k));
    }

    private static bool Ptr8(ulong address) => address % 8 == 0;

    /// <summary>The span arrays, checked: 0 ≤ start &lt; end, end − start ≤ maxSpanLen; returns the largest end.</summary>
    private static (int[] Starts, int[] Ends, int LastRow) Spans(Args a, int nSpans, int maxSpanLen)
    {
        var starts = a.Ints(2, nSpans).ToArray();
        var ends = a.Ints(3, nSpans).ToArray();
        int last = 0;
        for (int i = 0; i < nSpans; i++)
        {
            Need(a.Kernel, starts[i] >= 0 && ends[i] > starts[i] && ends[i] - starts[i] <= maxSpanLen,
                $"span {i} = [{starts[i]}, {ends[i]}) is empty or longer than maxSpanLen {maxSpanLen}");
            last = Math.Max(last, ends[i]);
        }
        return (starts, ends, last);
    }

    private static void Need(KernelSpec kernel, bool ok, string what)
    {
        if (!ok) throw new InvalidOperationException($"kernel {kernel.Name}: {what}");
    }

    public override void Dispose()
    {
        if (disposed) return;
        disposed = true;
        List<ulong> remaining;
        lock (gate) remaining = live.Keys.ToList();
        foreach (var address in remaining) FreeRaw(address);
    }

    /// <summary>Typed access to a launch's arguments; pointer arguments become checked views of simulated device memory.</summary>
    private readonly ref struct Args(SimulatedBackend owner, KernelSpec kernel, ReadOnlySpan<object> values)
    {
        private readonly ReadOnlySpan<object> values = values;
        public KernelSpec Kernel { get; } = kernel;

        public ulong Ptr(int i) => KernelArgs.AddressOf(values[i]);
        public int Int(int i) => (int)values[i];
        public long Long(int i) => values[i] is int small ? small : (long)values[i];
        public float Float(int i) => (float)values[i];
        public Span<float> Floats(int i, long count) => owner.View<float>(Ptr(i), count, $"{Kernel.Name} argument {i}");
        public Span<int> Ints(int i, long count) => owner.View<int>(Ptr(i), count, $"{Kernel.Name} argument {i}");
        public Span<double> Doubles(int i, long count) => owner.View<double>(Ptr(i), count, $"{Kernel.Name} argument {i}");
    }
}
