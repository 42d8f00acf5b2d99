using System.Globalization;
using LongDep.Core.Pipeline;
using LongDep.Models;
using LongDep.Models.Cpu;

namespace LongDep.Cli.Runtime;

/// <summary>
/// What a model's own limits say about a scoring run, checked once before the first record: a learned position table
/// that cannot hold the sequences the method runs is an error at start (never a record that fails later), and a
/// window past the length the model was trained at is allowed but said once.
/// </summary>
public static class ModelChecks
{
    /// <summary>Throws <see cref="CliException"/> when <paramref name="settings"/> cannot run on <paramref name="config"/>; returns the warnings to print.</summary>
    public static IReadOnlyList<string> BeforeScoring(ModelConfig config, ScoreSettings settings)
    {
        var warnings = new List<string>();
        string F(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        if (settings.Method == ScoreMethod.ProLong)
        {
            try
            {
                CpuProLongProbe.CheckPrefixReuse(config, settings.Chunk);
            }
            catch (NotSupportedException e)
            {
                throw new CliException($"--chunk {settings.Chunk}: {e.Message}", ExitCodes.Usage);
            }
        }
        else if (config.Positions == PositionKind.Learned && config.PositionOffset + (long)settings.Window > config.PositionRows)
        {
            int max = config.PositionRows - config.PositionOffset;
            throw new CliException(
                $"--window {F(settings.Window)}: LADM runs the first W tokens as one sequence, but the model has {F(max)} learned positions; use --window {F(max)} or less",
                ExitCodes.Usage);
        }

        // ProLong runs pairs of 2l tokens; LADM runs the whole window.
        long longest = settings.Method == ScoreMethod.ProLong ? 2L * settings.Chunk : settings.Window;
        if (config.Positions == PositionKind.Rope && longest > config.ContextLength)
            warnings.Add($"the model was trained at {F(config.ContextLength)} tokens and will run sequences of up to {F(longest)} " +
                         $"({config.RopeScaling.Type switch { RopeScalingType.None => "no RoPE scaling", _ => "RoPE scaling " + config.RopeScaling }}); scores past its context are allowed but may mean little");
        return warnings;
    }
}
