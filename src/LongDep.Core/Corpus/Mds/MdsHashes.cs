using System.IO.Hashing;
using System.Security.Cryptography;

namespace LongDep.Core.Corpus.Mds;

/// <summary>
/// The shard hashes MDS indexes record (lower-case hex digests, as Python's <c>hexdigest()</c> gives them). The
/// algorithms computed here are those of hashlib and xxhash that .NET has; others in an index are left unchecked.
/// </summary>
public static class MdsHashes
{
    /// <summary>What <see cref="MdsWriter"/> records by default: one cryptographic and one fast hash.</summary>
    public static IReadOnlyList<string> Default { get; } = ["sha1", "xxh64"];

    /// <summary>Algorithms this class computes.</summary>
    public static IReadOnlyList<string> Supported { get; } = ["md5", "sha1", "sha256", "sha384", "sha512", "xxh32", "xxh64", "xxh3_64", "xxh128", "xxh3_128"];

    /// <summary>True when <paramref name="algorithm"/> can be computed here.</summary>
    public static bool IsSupported(string algorithm) => Supported.Contains(algorithm);

    /// <summary>The hex digest of <paramref name="data"/> under <paramref name="algorithm"/>.</summary>
    /// <exception cref="ArgumentException">An algorithm this class does not compute.</exception>
    public static string Compute(string algorithm, ReadOnlySpan<byte> data) => algorithm switch
    {
        "md5" => Convert.ToHexStringLower(MD5.HashData(data)),
        "sha1" => Convert.ToHexStringLower(SHA1.HashData(data)),
        "sha256" => Convert.ToHexStringLower(SHA256.HashData(data)),
        "sha384" => Convert.ToHexStringLower(SHA384.HashData(data)),
        "sha512" => Convert.ToHexStringLower(SHA512.HashData(data)),
        "xxh32" => Convert.ToHexStringLower(XxHash32.Hash(data)),
        "xxh64" => Convert.ToHexStringLower(XxHash64.Hash(data)),
        "xxh3_64" => Convert.ToHexStringLower(XxHash3.Hash(data)),
        "xxh128" or "xxh3_128" => Convert.ToHexStringLower(XxHash128.Hash(data)),
        _ => throw new ArgumentException($"hash '{algorithm}' is not one longdep computes ({string.Join(", ", Supported)})", nameof(algorithm)),
    };

    /// <summary>
    /// Checks every hash the index gives for a file that this class computes; returns null when all match, else what
    /// differs.
    /// </summary>
    public static string? Verify(MdsFileInfo file, ReadOnlySpan<byte> data)
    {
        foreach (var (algorithm, expected) in file.Hashes)
        {
            if (!IsSupported(algorithm)) continue;
            string actual = Compute(algorithm, data);
            if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
                return $"its {algorithm} is {actual} but the index says {MdsEncoding.Clip(expected)}";
        }
        return null;
    }
}
