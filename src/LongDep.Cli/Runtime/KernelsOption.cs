using System.CommandLine;
using LongDep.Cuda;

namespace LongDep.Cli.Runtime;

/// <summary><c>--kernel-set tensor|simple</c>: the GPU kernel set for attention and PFS; the default comes from <c>LONGDEP_KERNEL_SET</c>.</summary>
internal static class KernelsOption
{
    public static Option<string?> Create()
    {
        var option = new Option<string?>("--kernel-set")
        {
            Description = "GPU: attention and PFS kernels: tensor (tensor cores with f16 inputs where the head dimension is 64 or 128) " +
                          $"or simple (scalar float32); default tensor, or ${AttentionKernelNames.EnvironmentVariable}",
        };
        option.AcceptOnlyFromAmong("tensor", "simple");
        return option;
    }

    /// <summary>The option's value, else the environment's, else tensor cores; a bad environment value is a usage error.</summary>
    public static AttentionKernels Read(ParseResult result, Option<string?> option)
    {
        string? value = result.GetValue(option);
        try
        {
            AttentionKernelNames.WideFromEnvironment(); // a bad LONGDEP_WIDE_ATTENTION is a usage error here, not later
            return value is null ? AttentionKernelNames.FromEnvironment() : AttentionKernelNames.Parse(value, "--kernel-set");
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message, ExitCodes.Usage);
        }
    }

    /// <summary>The set named by the option or the environment; null when neither names one.</summary>
    public static AttentionKernels? ReadExplicit(ParseResult result, Option<string?> option) =>
        result.GetValue(option) is null && Environment.GetEnvironmentVariable(AttentionKernelNames.EnvironmentVariable) is null
            ? null
            : Read(result, option);

    /// <summary>The environment's choice (commands without the option, such as <c>ppl</c>).</summary>
    public static AttentionKernels FromEnvironment()
    {
        try
        {
            AttentionKernelNames.WideFromEnvironment();
            return AttentionKernelNames.FromEnvironment();
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message, ExitCodes.Usage);
        }
    }
}
