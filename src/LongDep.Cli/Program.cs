using System.CommandLine;
using LongDep.Cli.Commands;
using LongDep.Cli.Runtime;

namespace LongDep.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand(
            "LongDepEngine: scores long-context training documents by how much they depend on their own distant context " +
            "(LADM's CDS, ProLong's LDS) and selects the best of a corpus.");
        foreach (var command in Commands()) root.Add(command);
        return CliApp.Invoke(root, args);
    }

    /// <summary>The GPU backend of <c>longdep ppl</c> for cuda, cuda:N or auto (null when CUDA cannot be used there).</summary>
    private static Core.Detail.ISequenceNll? GpuSequenceNll(string device, Models.LoadedModel model)
    {
        var spec = DeviceSpec.Parse(device);
        if (spec.Cpu) return null;
        int ordinal = spec.Gpus is [var g] ? g : spec.Auto ? 0 : throw new CliException("ppl runs on one GPU: use --device cuda:N", ExitCodes.Usage);
        if (spec.Auto && Cuda.CudaModel.Unsupported(model.Weights.Config) is not null) return new Reports.CpuSequenceNll(new Models.Cpu.CpuForward(model.Weights));
        if (!Cuda.CudaDevice.TryOpen(ordinal, out var gpu, out string reason))
        {
            if (spec.Auto) return new Reports.CpuSequenceNll(new Models.Cpu.CpuForward(model.Weights));
            throw new CliException($"--device {device}: {reason}");
        }
        Cuda.NvtxRanges.Install();
        return Cuda.CudaSequenceNll.Create(gpu, model.Weights, new Cuda.CudaModelOptions { Kernels = Runtime.KernelsOption.FromEnvironment() });
    }

    /// <summary>Every subcommand of <c>longdep</c>.</summary>
    public static IEnumerable<Command> Commands() =>
    [
        ScoreCommand.Create(),
        SelectCommand.Create(),
        PackCommand.Create(),
        MergeCommand.Create(),
        InspectCommand.Create(),
        DemoCommand.Create(),
        MakeModelCommand.Create(),
        SelfTestCommand.Create(),
        BenchCommand.Create(),
        Reports.PlotCommand.Create(),
        Reports.ReportCommand.Create(),
        Reports.PplCommand.Create(GpuSequenceNll),
    ];
}
