namespace LongDep.Cuda.Tests;

/// <summary>Sets environment variables (null removes one) for a test and puts back what was there when disposed.</summary>
internal sealed class EnvironmentScope : IDisposable
{
    private readonly List<(string Name, string? Before)> saved = [];

    public EnvironmentScope(params (string Name, string? Value)[] variables)
    {
        foreach (var (name, value) in variables)
        {
            saved.Add((name, Environment.GetEnvironmentVariable(name)));
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    /// <summary>The wide-kernel switches of <see cref="AttentionKernelNames"/>.</summary>
    public static EnvironmentScope WideForms(string? wide, string? warps) =>
        new((AttentionKernelNames.WideEnvironmentVariable, wide), (AttentionKernelNames.WarpsEnvironmentVariable, warps));

    public void Dispose()
    {
        for (int i = saved.Count - 1; i >= 0; i--) Environment.SetEnvironmentVariable(saved[i].Name, saved[i].Before);
        saved.Clear();
    }
}
