namespace LongDep.Cuda.Tests;

/// <summary>Kernel argument packing and checking, without a GPU.</summary>
public unsafe class KernelArgsTests
{
    private static readonly KernelSpec Spec = new("test_kernel", "pilfd");

    [Test]
    public void Pack_WritesEachValueInItsSlot_AndPointsAtIt()
    {
        ulong* slots = stackalloc ulong[5];
        void** pointers = stackalloc void*[5];
        for (int i = 0; i < 5; i++) slots[i] = 0xDEADBEEFDEADBEEF;
        KernelArgs.Pack(Spec, [new DevicePtr(0x1234_5678_9ABCUL), -7, 5_000_000_000L, 1.5f, -2.25], pointers, slots);
        Assert.Multiple(() =>
        {
            for (int i = 0; i < 5; i++)
            {
                Assert.That((ulong)pointers[i], Is.EqualTo((ulong)(slots + i)), $"pointer {i}");
                Assert.That((ulong)pointers[i] % 8, Is.Zero, $"slot {i} is 8-byte aligned");
            }
            Assert.That(*(ulong*)pointers[0], Is.EqualTo(0x1234_5678_9ABCUL));
            Assert.That(*(int*)pointers[1], Is.EqualTo(-7));
            Assert.That(*((int*)pointers[1] + 1), Is.Zero, "the unused half of an int slot is zeroed");
            Assert.That(*(long*)pointers[2], Is.EqualTo(5_000_000_000L));
            Assert.That(*(float*)pointers[3], Is.EqualTo(1.5f));
            Assert.That(*(double*)pointers[4], Is.EqualTo(-2.25));
        });
    }

    [Test]
    public void Pack_WidensIntForLongParameters_AndTakesBuffersAsPointers()
    {
        using var backend = new Twins.SimulatedBackend();
        using var buffer = backend.Allocate<float>(4, "test", "nothing");
        ulong* slots = stackalloc ulong[5];
        void** pointers = stackalloc void*[5];
        KernelArgs.Pack(Spec, [buffer, 1, 42, 0f, 0.0], pointers, slots);
        Assert.That(*(ulong*)pointers[0], Is.EqualTo(buffer.Pointer.Address));
        Assert.That(*(long*)pointers[2], Is.EqualTo(42L));
    }

    [Test]
    public void Validate_RejectsWrongCountAndKinds_NamingKernelAndArgument()
    {
        var count = Assert.Throws<ArgumentException>(() => KernelArgs.Validate(Spec, [DevicePtr.Null, 1, 2L, 1f]));
        Assert.That(count!.Message, Does.Contain("test_kernel").And.Contain("takes 5 arguments").And.Contain("4 were given"));
        var kind = Assert.Throws<ArgumentException>(() => KernelArgs.Validate(Spec, [DevicePtr.Null, 1L, 2L, 1f, 1.0]));
        Assert.That(kind!.Message, Does.Contain("argument 1").And.Contain("expected int").And.Contain("Int64"));
        var dbl = Assert.Throws<ArgumentException>(() => KernelArgs.Validate(Spec, [DevicePtr.Null, 1, 2L, 1.0, 1.0]));
        Assert.That(dbl!.Message, Does.Contain("argument 3").And.Contain("expected float"));
        var ptr = Assert.Throws<ArgumentException>(() => KernelArgs.Validate(Spec, [0UL, 1, 2L, 1f, 1.0]));
        Assert.That(ptr!.Message, Does.Contain("argument 0").And.Contain("device pointer"));
        Assert.DoesNotThrow(() => KernelArgs.Validate(Spec, [DevicePtr.Null, 1, 2, 1f, 1.0]));
    }

    [Test]
    public void DevicePtr_And_Dim3_Arithmetic()
    {
        Assert.That(new DevicePtr(100).AddBytes(28).Address, Is.EqualTo(128UL));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DevicePtr(100).AddBytes(-1));
        Dim3 d = 7;
        Assert.That(d, Is.EqualTo(new Dim3(7, 1, 1)));
        Assert.That(new Dim3(3, 4, 5).Count, Is.EqualTo(60));
    }
}
