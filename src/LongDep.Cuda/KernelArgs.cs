namespace LongDep.Cuda;

/// <summary>
/// Packs kernel arguments for <c>cuLaunchKernel</c>: one 8-byte slot per argument holding its value, and an array of
/// pointers to those slots (the driver reads each argument through its pointer, with the kernel's parameter sizes).
/// Arguments are checked against the kernel's <see cref="KernelSpec.Parameters"/> first, so a wrong count or type is an
/// <see cref="ArgumentException"/> naming the kernel and the argument, not a corrupted launch.
/// </summary>
internal static unsafe class KernelArgs
{
    /// <summary>Bytes per argument slot (every kind we pass fits in 8 bytes and 8-byte alignment suits all).</summary>
    public const int SlotBytes = 8;

    /// <summary>Checks count and kinds; throws <see cref="ArgumentException"/> describing the first mismatch.</summary>
    public static void Validate(KernelSpec kernel, ReadOnlySpan<object> args)
    {
        if (args.Length != kernel.ParameterCount)
            throw new ArgumentException(
                $"kernel {kernel.Name} takes {kernel.ParameterCount} arguments ({Describe(kernel.Parameters)}), {args.Length} were given");
        for (int i = 0; i < args.Length; i++)
        {
            char kind = kernel.Parameters[i];
            object? value = args[i];
            bool ok = kind switch
            {
                'p' => value is DevicePtr or IDeviceMemory,
                'i' => value is int,
                'l' => value is long or int,
                'f' => value is float,
                'd' => value is double,
                _ => throw new InvalidOperationException($"kernel {kernel.Name}: unknown parameter kind '{kind}'"),
            };
            if (!ok)
                throw new ArgumentException(
                    $"kernel {kernel.Name} argument {i}: expected {KindName(kind)}, got {(value is null ? "null" : value.GetType().Name)}");
        }
    }

    /// <summary>
    /// Validates and writes <paramref name="args"/> into <paramref name="slots"/> (<c>args.Length</c> slots of
    /// <see cref="SlotBytes"/>, 8-byte aligned) and points <paramref name="pointers"/>[i] at slot i.
    /// </summary>
    public static void Pack(KernelSpec kernel, ReadOnlySpan<object> args, void** pointers, ulong* slots)
    {
        Validate(kernel, args);
        for (int i = 0; i < args.Length; i++)
        {
            ulong* slot = slots + i;
            *slot = 0;
            switch (kernel.Parameters[i])
            {
                case 'p': *slot = AddressOf(args[i]); break;
                case 'i': *(int*)slot = (int)args[i]; break;
                case 'l': *(long*)slot = args[i] is int small ? small : (long)args[i]; break;
                case 'f': *(float*)slot = (float)args[i]; break;
                case 'd': *(double*)slot = (double)args[i]; break;
            }
            pointers[i] = slot;
        }
    }

    /// <summary>The device address of a pointer argument (a <see cref="DevicePtr"/> or a buffer).</summary>
    public static ulong AddressOf(object arg) => arg switch
    {
        DevicePtr p => p.Address,
        IDeviceMemory m => m.Pointer.Address,
        _ => throw new ArgumentException($"expected a device pointer, got {arg.GetType().Name}"),
    };

    private static string KindName(char kind) => kind switch
    {
        'p' => "a device pointer (DevicePtr or a device buffer)",
        'i' => "int",
        'l' => "long",
        'f' => "float",
        'd' => "double",
        _ => kind.ToString(),
    };

    private static string Describe(string kinds) => string.Join(", ", kinds.Select(KindName));
}
