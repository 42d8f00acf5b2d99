using System.CommandLine;
using LongDep.Cli.Runtime;
using LongDep.Core.Corpus;

namespace LongDep.Cli.Commands;

/// <summary><c>longdep merge</c>: joins shard outputs into one score file in input order.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "shard outputs (longdep score --shard i/N)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "merged score file", Required = true };
        var expect = new Option<long?>("--expect") { Description = "the input's record count, to report records missing at the end" };
        var cmd = new Command("merge", "Join shard score files into one file in input order; reports missing and duplicate indexes (exit 1 if any).")
        {
            files, output, expect,
        };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            string tmp = outPath + ".tmp";
            MergeReport report;
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                report = ScoreMerge.Merge(r.GetValue(files)!, stream, r.GetValue(expect));
            File.Move(tmp, outPath, overwrite: true);
            Console.Out.WriteLine($"merged {report.Written:N0} records into {outPath}");
            if (report.Complete) return ExitCodes.Ok;
            if (report.MissingCount > 0)
                Console.Error.WriteLine($"longdep: {report.MissingCount:N0} index(es) missing, e.g. {string.Join(", ", report.Missing.Take(10))}; rerun those shards (they resume)");
            if (report.Duplicates.Count > 0)
                Console.Error.WriteLine($"longdep: {report.Duplicates.Count:N0} duplicate index(es), e.g. {string.Join(", ", report.Duplicates.Take(10))}; the first occurrence was kept (overlapping shards?)");
            return ExitCodes.Failed;
        });
        return cmd;
    }
}
