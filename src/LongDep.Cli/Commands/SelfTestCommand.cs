using System.CommandLine;
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
        var device = new Option<int>("--gpu") { Description = "CUDA device ordinal", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "kernels and the tiny model only (seconds)" };
        var shapeTokens = new Option<int>("--shape-tokens") { Description = "tokens of the TinyLlama-shape comparison", DefaultValueFactory = _ => 4096 };
        var longTokens = new Option<int>("--long-tokens") { Description = "tokens of the long PFS comparison", DefaultValueFactory = _ => 32768 };
        var longLayers = new Option<int>("--long-layers") { Description = "layers of the long PFS comparison", DefaultValueFactory = _ => 2 };
        var pairs = new Option<int>("--pairs") { Description = "ProLong pairs of the TinyLlama-shape comparison", DefaultValueFactory = _ => 48 };
        var kernels = KernelsOption.Create();
        var tolerance = new Option<double>("--tolerance") { Description = "relative tolerance against the CPU", DefaultValueFactory = _ => 2e-3 };
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
