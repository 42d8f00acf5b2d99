namespace LongDep.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("longdep: not built yet");
        return 2;
    }
}
