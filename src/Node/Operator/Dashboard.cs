namespace ClusterJobs.Node.Operator;

/// <summary>The dashboard: one page (Operator/Dashboard/index.html, embedded) that reads and drives the operator API.</summary>
internal static class Dashboard
{
    public static readonly string Html = Load();

    private static string Load()
    {
        using var stream = typeof(Dashboard).Assembly.GetManifestResourceStream("ClusterJobs.Node.Operator.Dashboard.index.html")
            ?? throw new InvalidOperationException("The dashboard page is missing from the assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
