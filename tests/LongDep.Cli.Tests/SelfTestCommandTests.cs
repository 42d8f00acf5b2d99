namespace LongDep.Cli.Tests;

/// <summary><c>longdep selftest --emulate</c>: the GPU self-test with the kernels' source on the CPU emulator.</summary>
public class SelfTestCommandTests
{
    [Test]
    public void QuickSelfTest_OnTheKernelEmulator_PassesAndSaysWhereTheKernelsRan()
    {
        Prerequisites.KernelEmulator();
        var (code, stdout, err) = CliHarness.RunChild("selftest", "--quick", "--emulate");
        Assert.That(code, Is.EqualTo(0), stdout + err);
        Assert.That(stdout, Does.Contain("the kernels run from their source on the CPU emulator"));
        Assert.That(stdout, Does.Contain("kv_pack_f16 + attention_mma64_kv16_wide_f32").And.Contain("kv_pack_f16 + attention_mma64_kv16_f32")
            .And.Contain("attention_mma64_kv16_wide_f16 vs attention_mma64_kv16_f16").And.Contain("pfs_row_stats_mma64_wide vs pfs_row_stats_mma64")
            .And.Contain("pfs_column_mass (T 700"));
        Assert.That(stdout, Does.Contain("selftest: all checks passed").And.Not.Contain("FAIL"));
    }
}
