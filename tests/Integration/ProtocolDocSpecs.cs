using System.Reflection;
using System.Text.RegularExpressions;

namespace ClusterJobs.Integration.Tests;

/// <summary>docs/protocol.md is what producers in other languages write from: its scripts must be the ones the code runs.</summary>
public sealed partial class ProtocolDocSpecs
{
    [Fact]
    public void Every_Lua_script_the_protocol_doc_shows_is_one_the_code_runs_word_for_word()
    {
        var doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "protocol.md"));
        var shown = LuaBlock().Matches(doc).Select(m => m.Groups[1].Value).ToList();
        // Every script of ours is a string constant: ProducerScripts, NodeScripts, RecurringScripts...
        var scripts = new[] { typeof(Protocol.ProducerScripts).Assembly, typeof(Node.Hosting.ShutdownExit).Assembly }
            .SelectMany(assembly => assembly.GetTypes())
            .SelectMany(type => type.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(field => field is { IsLiteral: true } && field.FieldType == typeof(string))
            .Select(field => Words((string)field.GetRawConstantValue()!)).ToList();

        Assert.True(shown.Count >= 4, $"found {shown.Count} lua blocks in docs/protocol.md");
        Assert.All(shown, script => Assert.True(scripts.Any(s => s.Contains(Words(script), StringComparison.Ordinal)),
            $"docs/protocol.md shows a script no constant of the code holds (mend the doc, or the code):\n{script}"));
    }

    /// <summary>The text with every run of white space one space: indentation and line breaks are not the script.</summary>
    private static string Words(string text) => Whitespace().Replace(text, " ").Trim();

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterJobs.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (ClusterJobs.sln) above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"```lua\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex LuaBlock();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
