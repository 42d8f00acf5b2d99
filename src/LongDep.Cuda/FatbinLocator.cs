namespace LongDep.Cuda;

/// <summary>
/// Finds <c>longdep_kernels.fatbin</c>: the environment variable <see cref="EnvironmentVariable"/> (a file, or a folder
/// holding it), then beside the executable, then &lt;repo&gt;/build/native (repo = the folder holding LongDepEngine.sln).
/// </summary>
public static class FatbinLocator
{
    public const string EnvironmentVariable = "LONGDEP_KERNELS";
    public const string FileName = "longdep_kernels.fatbin";
    /// <summary>The command that builds the fatbin, for messages.</summary>
    public const string BuildCommand = "bash native/build-kernels.sh build/native";

    /// <summary>The candidate paths in the order they are tried.</summary>
    public static IReadOnlyList<string> Candidates(string? environmentValue, string baseDirectory, string? currentDirectory)
    {
        var list = new List<string>();
        if (!string.IsNullOrWhiteSpace(environmentValue))
            list.Add(Directory.Exists(environmentValue) ? Path.Combine(environmentValue, FileName) : environmentValue);
        list.Add(Path.Combine(baseDirectory, FileName));
        foreach (var start in new[] { baseDirectory, currentDirectory })
        {
            if (start is null) continue;
            var repo = FindRepositoryRoot(start);
            if (repo is not null) list.Add(Path.Combine(repo, "build", "native", FileName));
        }
        return list.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Returns the first existing candidate; throws <see cref="CudaUnavailableException"/> listing them all.</summary>
    public static string Locate() => Locate(Environment.GetEnvironmentVariable(EnvironmentVariable), AppContext.BaseDirectory,
        Environment.CurrentDirectory, File.Exists);

    internal static string Locate(string? environmentValue, string baseDirectory, string? currentDirectory, Func<string, bool> exists)
    {
        var candidates = Candidates(environmentValue, baseDirectory, currentDirectory);
        foreach (var path in candidates)
            if (exists(path)) return path;
        var places = candidates.Select(p => $"{p}: not found").ToList();
        if (string.IsNullOrWhiteSpace(environmentValue)) places.Insert(0, $"${EnvironmentVariable}: not set");
        throw new CudaUnavailableException(
            $"The CUDA kernels ({FileName}) were not found. Looked at:\n  {string.Join("\n  ", places)}\n" +
            $"Build them with `{BuildCommand}` (needs nvcc), or set {EnvironmentVariable} to the fatbin's path.", places);
    }

    /// <summary>Walks up from <paramref name="start"/> to the folder holding LongDepEngine.sln; null when there is none.</summary>
    public static string? FindRepositoryRoot(string start)
    {
        try
        {
            for (var dir = new DirectoryInfo(Path.GetFullPath(start)); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "LongDepEngine.sln"))) return dir.FullName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
        }
        return null;
    }
}
