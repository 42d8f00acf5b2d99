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
        var expect = NumericOption.WholeOrNone("--expect", "the input's record count, to report records missing at the end (and the shards they belong to)", 0L, long.MaxValue, absent: "default: not checked");
        var cmd = new Command("merge", "Join shard score files into one file in input order; reports missing and duplicate indexes (exit 1 if any).")
        {
            files, output, expect,
        };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            string[] inputs = r.GetValue(files)!;
            OutputGuard.RequireFile("--output", outPath);
            OutputGuard.RefuseSameFiles(inputs.Select(f => new OutputGuard.Named("a merged file", f)).ToArray(), [new("--output", outPath)]);
            string tmp = outPath + ".tmp";
            MergeReport report;
            try
            {
                using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                    report = ScoreMerge.Merge(inputs, stream, r.GetValue(expect));
            }
            catch
            {
                File.Delete(tmp);
                throw;
            }
            File.Move(tmp, outPath, overwrite: true);
            Console.Out.WriteLine($"merged {report.Written:N0} records into {outPath}");
            if (report.Complete) return ExitCodes.Ok;
            // One line: what is missing, which shards to rerun.
            var parts = new List<string>();
            if (report.ShardsWithoutFile.Count > 0)
                parts.Add($"no file holds shard(s) {string.Join(", ", report.ShardsWithoutFile)} of {report.ShardCount}");
            if (report.MissingCount > 0)
                parts.Add($"{report.MissingCount:N0} record(s) missing (e.g. index {string.Join(", ", report.Missing.Take(10))})" +
                          (report.ShardsMissingRecords.Count > 0 ? $", in shard(s) {string.Join(", ", report.ShardsMissingRecords)} of {report.ShardCount}" : ""));
            if (report.Duplicates.Count > 0)
                parts.Add($"{report.Duplicates.Count:N0} index(es) found twice with different lines (e.g. {string.Join(", ", report.Duplicates.Take(10))}; the first was kept)");
            var rerun = report.ShardsWithoutFile.Union(report.ShardsMissingRecords).Order().ToArray();
            string hint = rerun.Length > 0 ? $"; rerun those shards (they resume), e.g. sbatch --array={string.Join(",", rerun)} job.sbatch, then merge again" : "; rerun the incomplete shards (they resume), then merge again";
            Console.Error.WriteLine($"longdep: merge incomplete: {string.Join("; ", parts)}{hint}");
            return ExitCodes.Failed;
        });
        return cmd;
    }
}
