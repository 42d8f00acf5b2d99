using System.CommandLine;
using LongDep.Core.Pipeline;
using LongDep.Cli.Runtime;
using LongDep.Cuda.SelfTest;
using LongDep.Models.Cpu;

namespace LongDep.Cli.Commands;

/// <summary>
/// <c>longdep selftest</c>: validates the CUDA engine on this machine's GPU against the CPU twins — kernel by kernel,
/// then whole LADM and ProLong measurements on random models (tiny; TinyLlama's shape at 4K; a few layers at 32K).
/// </summary>
public static class SelfTestCommand
{
    public static Command Create()
    {
        var device = NumericOption.Whole("--gpu", "CUDA device ordinal", 0, 0, 1023);
        var quick = new Option<bool>("--quick") { Description = "kernels and the tiny model only (seconds)" };
        var shapeTokens = NumericOption.Whole("--shape-tokens", "tokens of the TinyLlama-shape comparison", 4096, 16, ScoreSettings.MaxWindow);
        var longTokens = NumericOption.Whole("--long-tokens", "tokens of the long PFS comparison", 32768, 16, ScoreSettings.MaxWindow);
        var longLayers = NumericOption.Whole("--long-layers", "layers of the long PFS comparison", 2, 1, 1024);
        var pairs = NumericOption.Whole("--pairs", "ProLong pairs of the TinyLlama-shape comparison", 48, 1, 1 << 20);
        var kernels = KernelsOption.Create();
        var tolerance = NumericOption.Real("--tolerance", "relative tolerance against the CPU", 2e-3, 0, 1, minExclusive: true);
        var emulate = new Option<bool>("--emulate")
        {
            Description = "no GPU: run the kernels from their CUDA source on the CPU kernel emulator (built by ./build.sh; use with --quick)",
        };
        var cmd = new Command("selftest", "Compare every CUDA kernel and both GPU probes with their CPU twins on this machine's GPU (exit 1 on any failure).")
        {
            device, quick, shapeTokens, longTokens, longLayers, pairs, tolerance, kernels, emulate,
        };
        cmd.SetAction(r =>
        {
            var options = new SelfTestOptions
            {
                Device = r.GetValue(device),
                Quick = r.GetValue(quick),
                ShapeTokens = r.GetValue(shapeTokens),
                LongTokens = r.GetValue(longTokens),
                LongLayers = r.GetValue(longLayers),
                ShapePairs = r.GetValue(pairs),
                Tolerance = r.GetValue(tolerance),
                Kernels = KernelsOption.Read(r, kernels),
                Emulate = r.GetValue(emulate),
            };
            bool ok = CudaSelfTest.Run(Console.Out, options, w => new CpuLadmProbe(new CpuForward(w)), w => new CpuProLongProbe(new CpuForward(w)));
            if (!ok) throw new CliException("selftest failed (see above)");
            Console.Out.WriteLine("selftest: all checks passed");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
