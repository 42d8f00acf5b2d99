using System.Diagnostics;
using System.Text.RegularExpressions;

namespace LongDep.Cuda.Tests;

/// <summary>The host's kernel list against the kernel sources and the built fatbin.</summary>
public partial class KernelNamesTests
{
    private static string RepoRoot()
    {
        var root = FatbinLocator.FindRepositoryRoot(TestContext.CurrentContext.TestDirectory);
        Assert.That(root, Is.Not.Null, "the tests run inside the repository (LongDepEngine.sln above the test folder)");
        return root!;
    }

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+(?:__launch_bounds__\(\s*\d+\s*(?:,\s*\d+\s*)?\)\s+)?void\s+(\w+)\s*\(([^)]*)\)", RegexOptions.Singleline)]
    private static partial Regex KernelSignature();

    /// <summary>Parameter kinds of every extern "C" kernel in kernels/*.cu, as KernelSpec letters.</summary>
    private static Dictionary<string, string> SourceKernels()
    {
        var result = new Dictionary<string, string>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoRoot(), "kernels"), "*.cu"))
        {
            foreach (Match m in KernelSignature().Matches(File.ReadAllText(file)))
            {
                var kinds = m.Groups[2].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(p => p.Contains('*') ? 'p'
                        : Regex.IsMatch(p, @"^(const\s+)?long\s+long\b") ? 'l'
                        : Regex.IsMatch(p, @"^(const\s+)?int\b") ? 'i'
                        : Regex.IsMatch(p, @"^(const\s+)?float\b") ? 'f'
                        : Regex.IsMatch(p, @"^(const\s+)?double\b") ? 'd'
                        : throw new AssertionException($"{Path.GetFileName(file)}: kernel {m.Groups[1].Value} has a parameter of unknown kind: '{p}'"))
                    .ToArray();
                Assert.That(result.TryAdd(m.Groups[1].Value, new string(kinds)), Is.True, $"kernel {m.Groups[1].Value} is defined twice");
            }
        }
        return result;
    }

    [Test]
    public void EveryListedKernel_IsDefinedInTheSources_WithTheSameParameterKinds()
    {
        var sources = SourceKernels();
        Assert.That(sources, Is.Not.Empty);
        Assert.Multiple(() =>
        {
            foreach (var spec in KernelNames.All)
            {
                Assert.That(sources.ContainsKey(spec.Name), Is.True, $"{spec.Name} is not in kernels/*.cu");
                if (sources.TryGetValue(spec.Name, out var kinds))
                    Assert.That(spec.Parameters, Is.EqualTo(kinds), $"{spec.Name}: KernelNames says ({spec.Parameters}), the source says ({kinds})");
            }
            foreach (var name in sources.Keys)
                Assert.That(KernelNames.All.Any(s => s.Name == name), Is.True, $"kernel {name} in kernels/*.cu is missing from KernelNames.All");
        });
    }

    [Test]
    public void KernelNames_AreUniqueAndWellFormed()
    {
        Assert.That(KernelNames.All.Select(s => s.Name), Is.Unique);
        foreach (var spec in KernelNames.All)
            Assert.That(spec.Parameters, Does.Match("^[pilfd]+$"), spec.Name);
        var fields = typeof(KernelNames).GetFields().Where(f => f.FieldType == typeof(KernelSpec)).Select(f => (KernelSpec)f.GetValue(null)!);
        Assert.That(KernelNames.All, Is.EquivalentTo(fields), "All lists every KernelSpec field");
    }

    [Test]
    public void UnityTranslationUnit_IncludesEveryKernelFile()
    {
        string unity = File.ReadAllText(Path.Combine(RepoRoot(), "native", "longdep_kernels.cu"));
        foreach (var file in Directory.GetFiles(Path.Combine(RepoRoot(), "kernels"), "*.cu"))
            Assert.That(unity, Does.Contain($"#include \"../kernels/{Path.GetFileName(file)}\""), Path.GetFileName(file));
    }

    [Test]
    public void Fatbin_ExportsEveryListedKernel()
    {
        string fatbin = Prerequisites.Fatbin();
        string output;
        try
        {
            var psi = new ProcessStartInfo("cuobjdump", ["-symbols", fatbin]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(psi)!;
            output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.That(process.ExitCode, Is.Zero, $"cuobjdump failed: {process.StandardError.ReadToEnd()}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Prerequisites.Missing($"cuobjdump (the CUDA toolkit's) is not available ({e.Message}); {Prerequisites.HowToBuild}");
            return;
        }
        var entries = output.Split('\n').Where(l => l.Contains("STO_ENTRY")).Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]).ToHashSet();
        Assert.Multiple(() =>
        {
            foreach (var spec in KernelNames.All)
                Assert.That(entries, Does.Contain(spec.Name), $"{spec.Name} is not exported by {fatbin}; rebuild the kernels");
        });
        Assert.That(output, Does.Contain("arch = sm_90"));
    }
}
