using System.Text;

namespace LongDep.Cli.Runtime;

/// <summary>What kind of file a path names.</summary>
public enum FileKind { Regular, Directory, Fifo, CharacterDevice, Socket, Other }

/// <summary>
/// Which file a path names, by device and inode (on Linux; elsewhere by the full path with links resolved), so that a
/// symlink, a hard link or a "./" variant of an input is recognised as that input.
/// </summary>
/// <param name="Key">"device:inode" (or the resolved full path).</param>
/// <param name="Kind">Regular file, FIFO, terminal or other device, ...</param>
/// <param name="Device">The device number (0 where unknown), to find locks in /proc/locks.</param>
/// <param name="Inode">The inode number (0 where unknown).</param>
public sealed record FileIdentity(string Key, FileKind Kind, ulong Device, ulong Inode)
{
    /// <summary>The identity of <paramref name="path"/> (following symlinks), or null when it does not exist.</summary>
    public static FileIdentity? Of(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            byte[] bytes = Encoding.UTF8.GetBytes(path + "\0");
            return Stat(bytes);
        }
        if (!File.Exists(path) && !Directory.Exists(path)) return null;
        string full = Path.GetFullPath(path);
        try
        {
            if (File.ResolveLinkTarget(full, returnFinalTarget: true) is { } target) full = target.FullName;
        }
        catch (IOException) { }
        return new FileIdentity(full, Directory.Exists(full) ? FileKind.Directory : FileKind.Regular, 0, 0);
    }

    /// <summary>The identity of what standard output is connected to, or null where it cannot be told.</summary>
    public static FileIdentity? OfStandardOutput() => OperatingSystem.IsLinux() ? FStat(1) : null;

    private static unsafe FileIdentity? Stat(byte[] path)
    {
        Tmds.Linux.stat st;
        fixed (byte* p = path)
        {
            if (Tmds.Linux.LibC.stat(p, &st) != 0) return null;
        }
        return From(st);
    }

    private static unsafe FileIdentity? FStat(int fd)
    {
        Tmds.Linux.stat st;
        if (Tmds.Linux.LibC.fstat(fd, &st) != 0) return null;
        return From(st);
    }

    private static FileIdentity From(Tmds.Linux.stat st)
    {
        uint mode = (uint)st.st_mode & 0xF000;
        FileKind kind = mode switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Other,
        };
        ulong dev = (ulong)st.st_dev, ino = (ulong)st.st_ino;
        return new FileIdentity($"{dev}:{ino}", kind, dev, ino);
    }

    /// <summary>
    /// Who holds an exclusive lock on <paramref name="path"/>: "process 1234 (longdep score ...)", from /proc/locks;
    /// null when it cannot be seen from here (another machine on a shared file system, not Linux).
    /// </summary>
    public static string? LockHolder(string path)
    {
        if (!OperatingSystem.IsLinux() || Of(path) is not { } id) return null;
        try
        {
            // /proc/locks: "1: FLOCK  ADVISORY  WRITE 12345 fe:00:408866 0 EOF" (major:minor in hex, inode in decimal)
            ulong major = ((id.Device >> 8) & 0xfff) | ((id.Device >> 32) & ~0xfffUL);
            ulong minor = (id.Device & 0xff) | ((id.Device >> 12) & ~0xffUL);
            string where = $"{major:x2}:{minor:x2}:{id.Inode}";
            foreach (string line in File.ReadLines("/proc/locks"))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 6 || f[1] != "FLOCK" || f[3] != "WRITE" || f[5] != where) continue;
                if (!int.TryParse(f[4], out int pid) || pid <= 0) continue;
                string command = "";
                try
                {
                    command = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
                if (command.Length > 160) command = command[..157] + "...";
                return command.Length > 0 ? $"process {pid} ({command})" : $"process {pid}";
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
