namespace LongDep.Cli.Runtime;

/// <summary>
/// Checks a command's outputs against its inputs before anything is opened for writing: an output that is the same file
/// as an input (the same path, a "./" variant, a symlink or a hard link: compared by device and inode) or as another
/// output is refused, whatever --overwrite says.
/// </summary>
public static class OutputGuard
{
    /// <summary>A path named by an option, e.g. ("--input", "corpus.jsonl").</summary>
    public readonly record struct Named(string Option, string? Path);

    /// <exception cref="CliException">Usage error naming both options.</exception>
    public static void RefuseSameFiles(IReadOnlyList<Named> inputs, IReadOnlyList<Named> outputs)
    {
        for (int o = 0; o < outputs.Count; o++)
        {
            var output = outputs[o];
            if (output.Path is null || output.Path == "-") continue;
            FileIdentity? id = FileIdentity.Of(output.Path);
            if (id is { Kind: FileKind.CharacterDevice or FileKind.Fifo or FileKind.Socket }) continue; // a stream, not a file
            foreach (var input in inputs)
            {
                if (input.Path is null || input.Path == "-") continue;
                if (Same(output.Path, id, input.Path))
                    throw new CliException($"{output.Option} '{output.Path}' is the same file as {input.Option} '{input.Path}': writing it would destroy the input; give {output.Option} another path", ExitCodes.Usage);
            }
            for (int other = 0; other < o; other++)
            {
                var earlier = outputs[other];
                if (earlier.Path is null || earlier.Path == "-") continue;
                if (Same(output.Path, id, earlier.Path))
                    throw new CliException($"{output.Option} '{output.Path}' is the same file as {earlier.Option} '{earlier.Path}': give each its own path", ExitCodes.Usage);
            }
        }
    }

    private static bool Same(string a, FileIdentity? aId, string b)
    {
        FileIdentity? bId = FileIdentity.Of(b);
        if (aId is not null && bId is not null) return aId.Key == bId.Key;
        return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
    }

    /// <summary>Refuses standard output, a pipe or a FIFO for an output that is written whole and then renamed into place.</summary>
    public static void RequireFile(string option, string path)
    {
        if (IsStream(path))
            throw new CliException($"{option} '{path}' is not a regular file: this command writes its output whole, then renames it into place; give a file path", ExitCodes.Usage);
    }

    /// <summary>True when <paramref name="path"/> is standard output ("-") or a file that is not a regular file (a pipe, FIFO, terminal, /dev/null).</summary>
    public static bool IsStream(string path) =>
        path == "-" || FileIdentity.Of(path) is { Kind: FileKind.Fifo or FileKind.CharacterDevice or FileKind.Socket };

    /// <summary>True when records written to <paramref name="path"/> go where standard output goes, so messages must not.</summary>
    public static bool SharesStandardOutput(string path)
    {
        if (path == "-") return true;
        FileIdentity? stdout = FileIdentity.OfStandardOutput(), target = FileIdentity.Of(path);
        return stdout is not null && target is not null && stdout.Key == target.Key && stdout.Kind != FileKind.CharacterDevice;
    }
}
