using LongDep.Cuda.Native;

namespace LongDep.Cuda.Tests;

/// <summary>Native library discovery and fatbin location, with injected search paths (no GPU or CUDA needed).</summary>
public class LibrarySearchTests
{
    private static readonly LibrarySearchEnvironment Linux = new("/opt/my-cuda", "/opt/other-cuda",
        ["/usr/local/cuda-13.0", "/usr/local/cuda-12.4", "/usr/local/cuda"], IsWindows: false);

    [Test]
    public void CublasPlan_OrdersUserRootsThenToolkitsThenSystem()
    {
        var plan = LibrarySearch.CublasPlan(Linux);
        var dirs = plan.Directories.ToList();
        Assert.Multiple(() =>
        {
            Assert.That(dirs[0], Is.EqualTo("/opt/my-cuda/lib64"));
            Assert.That(dirs.IndexOf("/opt/other-cuda/lib64"), Is.GreaterThan(0));
            Assert.That(dirs.IndexOf("/usr/local/cuda-13.0/lib64"), Is.LessThan(dirs.IndexOf("/usr/local/cuda-12.4/lib64")));
            Assert.That(dirs.IndexOf("/usr/local/cuda-12.4/lib64"), Is.LessThan(dirs.IndexOf("/usr/lib/x86_64-linux-gnu")));
            Assert.That(plan.FileNames, Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11" }));
            Assert.That(plan.TryLoaderPath, Is.True);
        });
    }

    [Test]
    public void DriverPlan_NeverUsesTheToolkitStub()
    {
        var plan = LibrarySearch.DriverPlan(Linux);
        Assert.That(plan.Directories, Has.None.Contains("stubs"));
        Assert.That(plan.Directories, Does.Contain("/usr/lib/x86_64-linux-gnu"));
        Assert.That(plan.FileNames[0], Is.EqualTo("libcuda.so.1"));
    }

    [Test]
    public void ToolkitVersions_SortNumerically()
    {
        var versions = new[] { "cuda-12.10", "cuda-12.4", "cuda-13", "cuda-x" }
            .OrderByDescending(LibrarySearchEnvironment.ParseToolkitVersion).ToArray();
        Assert.That(versions, Is.EqualTo(new[] { "cuda-13", "cuda-12.10", "cuda-12.4", "cuda-x" }));
    }

    [Test]
    public void Load_WhenNothingIsFound_ListsEveryPlaceItLooked()
    {
        var plan = new LibrarySearchPlan("cuBLAS (test)", ["/nowhere/a", "/nowhere/b"], ["libfake.so.13", "libfake.so.12"], true);
        var e = Assert.Throws<CudaUnavailableException>(() =>
            LibrarySearch.Load(plan, _ => throw new DllNotFoundException("cannot open shared object file"), _ => false));
        Assert.Multiple(() =>
        {
            Assert.That(e!.Message, Does.Contain("cuBLAS (test)"));
            Assert.That(e.Message, Does.Contain("/nowhere/a: not found"));
            Assert.That(e.Message, Does.Contain("/nowhere/b: not found"));
            Assert.That(e.Message, Does.Contain("libfake.so.13 on the system loader path"));
            Assert.That(e.Message, Does.Contain("libfake.so.12 on the system loader path"));
            Assert.That(e.Message, Does.Contain("cannot open shared object file"));
            Assert.That(e.Message, Does.Contain("CUDA_HOME"));
            Assert.That(e.Places, Has.Count.EqualTo(4));
        });
    }

    [Test]
    public void Load_ReportsAFileThatExistsButFails_AndReturnsTheFirstThatLoads()
    {
        var plan = new LibrarySearchPlan("lib", ["/d1", "/d2"], ["libx.so.13", "libx.so.12"], true);
        var existing = new HashSet<string> { "/d1/libx.so.13", "/d2/libx.so.12" };
        var (handle, path) = LibrarySearch.Load(plan, p => p == "/d2/libx.so.12" ? 42 : throw new DllNotFoundException("wrong ELF class"),
            existing.Contains);
        Assert.That(handle, Is.EqualTo((IntPtr)42));
        Assert.That(path, Is.EqualTo("/d2/libx.so.12"));

        var failing = Assert.Throws<CudaUnavailableException>(() =>
            LibrarySearch.Load(plan with { TryLoaderPath = false }, _ => IntPtr.Zero, existing.Contains));
        Assert.That(failing!.Message, Does.Contain("/d1/libx.so.13: found but failed to load"));
        Assert.That(failing.Message, Does.Not.Contain("loader path"));
    }

    [Test]
    public void Load_FallsBackToTheLoaderPath()
    {
        var plan = new LibrarySearchPlan("lib", ["/d1"], ["libx.so.1"], true);
        var (handle, path) = LibrarySearch.Load(plan, p => p == "libx.so.1" ? 7 : IntPtr.Zero, _ => false);
        Assert.That(handle, Is.EqualTo((IntPtr)7));
        Assert.That(path, Is.EqualTo("libx.so.1"));
    }

    [Test]
    public void TryOpen_OfAMissingDevice_GivesAReason_NotAnException()
    {
        bool ok = CudaDevice.TryOpen(4096, out var device, out string reason);
        Assert.That(ok, Is.False);
        Assert.That(device, Is.Null);
        Assert.That(reason, Does.Contain("device 4096 does not exist").Or.Contain("cuInit").Or.Contain("Cannot load"));
        if (!CudaDevice.Available(out string why)) Assert.That(why, Is.Not.Empty);
    }

    [Test]
    public void Fatbin_CandidatesInOrder_AndMissingListsThemWithTheBuildCommand()
    {
        string root = Path.Combine(Path.GetTempPath(), "longdep-fatbin-test-" + Guid.NewGuid().ToString("N"));
        string bin = Path.Combine(root, "src", "bin");
        Directory.CreateDirectory(bin);
        File.WriteAllText(Path.Combine(root, "LongDepEngine.sln"), "");
        try
        {
            var candidates = FatbinLocator.Candidates("/env/kernels.fatbin", bin, null);
            Assert.That(candidates, Is.EqualTo(new[]
            {
                "/env/kernels.fatbin",
                Path.Combine(bin, FatbinLocator.FileName),
                Path.Combine(root, "build", "native", FatbinLocator.FileName),
            }));
            var envDir = FatbinLocator.Candidates(root, bin, null)[0];
            Assert.That(envDir, Is.EqualTo(Path.Combine(root, FatbinLocator.FileName)), "a folder in the variable means the fatbin inside it");

            var e = Assert.Throws<CudaUnavailableException>(() => FatbinLocator.Locate(null, bin, null, _ => false));
            Assert.That(e!.Message, Does.Contain("$LONGDEP_KERNELS: not set")
                .And.Contain(Path.Combine(bin, FatbinLocator.FileName))
                .And.Contain(Path.Combine(root, "build", "native", FatbinLocator.FileName))
                .And.Contain(FatbinLocator.BuildCommand));
            string found = FatbinLocator.Locate(null, bin, null, p => p.Contains("build"));
            Assert.That(found, Is.EqualTo(Path.Combine(root, "build", "native", FatbinLocator.FileName)));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
