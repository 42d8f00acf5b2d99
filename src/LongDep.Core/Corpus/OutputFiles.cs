using LongDep.Core.Pipeline;

namespace LongDep.Core.Corpus;

/// <summary>
/// Opens a run's output files. Each is held for the whole run with an exclusive advisory lock (flock, taken by
/// <see cref="FileShare.None"/>), so two runs given the same output cannot interleave: the second fails at once with
/// <see cref="OutputBusyException"/>. The kernel drops the lock when the holder exits, however it exits, so a killed run
/// never blocks its rerun. The file is opened without truncation; the caller empties it after the lock is taken.
/// </summary>
public static class OutputFiles
{
    /// <summary>Opens (creating when absent) <paramref name="path"/> for reading and writing, locked.</summary>
    /// <param name="path">The file.</param>
    /// <param name="option">The option that named it (for messages), e.g. "--output".</param>
    /// <exception cref="OutputBusyException">Another process holds the file.</exception>
    /// <exception cref="ScoreRunException">The folder does not exist.</exception>
    public static FileStream OpenLocked(string path, string option)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
            throw new ScoreRunException($"{option}: the folder '{dir}' does not exist; create it first");
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        }
        catch (IOException e) when (IsLockConflict(e))
        {
            throw new OutputBusyException(path, option);
        }
    }

    /// <summary>True for the error a lock held by another process gives (EWOULDBLOCK, or Windows' sharing violation).</summary>
    public static bool IsLockConflict(IOException e) =>
        e is not FileNotFoundException and not DirectoryNotFoundException and not PathTooLongException &&
        (e.HResult == 11 || e.HResult == unchecked((int)0x80070020) || e.Message.Contains("being used by another process", StringComparison.Ordinal));
}
