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

    /// <summary>Every subcommand of <c>longdep</c>.</summary>
    public static IEnumerable<Command> Commands() =>
    [
        ScoreCommand.Create(),
        SelectCommand.Create(),
        MergeCommand.Create(),
        InspectCommand.Create(),
        DemoCommand.Create(),
        MakeModelCommand.Create(),
        SelfTestCommand.Create(),
    ];
}
