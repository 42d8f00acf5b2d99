namespace LongDep.Cuda;

/// <summary>An address in GPU memory (opaque; offsets are in bytes). <see cref="Null"/> is a valid "no buffer" argument.</summary>
public readonly record struct DevicePtr(ulong Address)
{
    public static DevicePtr Null => default;
    public bool IsNull => Address == 0;

    /// <summary>This address plus <paramref name="bytes"/>.</summary>
    public DevicePtr AddBytes(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        return new DevicePtr(checked(Address + (ulong)bytes));
    }

    public override string ToString() => $"0x{Address:x}";
}

/// <summary>Anything that owns GPU memory and can be passed to a kernel as a pointer.</summary>
public interface IDeviceMemory
{
    DevicePtr Pointer { get; }
    long ByteLength { get; }
}

/// <summary>Launch dimensions (grid or block).</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new(checked((uint)x));
    public long Count => (long)X * Y * Z;
    public override string ToString() => $"({X}, {Y}, {Z})";
}
