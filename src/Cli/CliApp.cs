using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace ClusterJobs.Cli;

/// <summary>
/// The <c>clusterjobs</c> command line (README.md, "Operating a cluster"). Exit codes: 0 done; 1 the API refused or
/// could not be reached (the reason on stderr); 2 the command line itself is wrong; 130 stopped (Ctrl+C).
/// </summary>
public static class CliApp
{
    public const string DefaultApi = "http://127.0.0.1:8080/";

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, HttpMessageHandler? handler = null,
        Func<string, string?>? env = null, CancellationToken ct = default)
    {
        env ??= Environment.GetEnvironmentVariable;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = stdout == Console.Out && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = stdout == Console.Out && !Console.IsOutputRedirected ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(stdout),
        });
        if (stdout != Console.Out || Console.IsOutputRedirected) console.Profile.Width = 200;
        using var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        var root = Commands.Build(console, stdout, env, result =>
        {
            var raw = result.GetValue(Commands.Api) ?? env("CLUSTERJOBS_API") ?? DefaultApi;
            if (!Uri.TryCreate(raw.EndsWith('/') ? raw : raw + "/", UriKind.Absolute, out var api) || api.Scheme is not ("http" or "https"))
                throw new CommandLineException($"--api '{raw}' is not an http(s) URL (e.g. {DefaultApi}).");
            http.Timeout = TimeSpan.FromSeconds(result.GetValue(Commands.Timeout)); // set once, before the first request
            return new OperatorApiClient(http, api, result.GetValue(Commands.Token) ?? env("CLUSTERJOBS_HTTP_TOKEN"));
        });
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors) stderr.WriteLine($"clusterjobs: {error.Message}");
            stderr.WriteLine("Try 'clusterjobs --help'.");
            return 2;
        }
        try
        {
            // Our own handler below: System.CommandLine's default one would print ApiException with its stack trace.
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false }, ct);
        }
        catch (ApiException ex)
        {
            stderr.WriteLine($"clusterjobs: {ex.Message}");
            return 1;
        }
        catch (CommandLineException ex)
        {
            stderr.WriteLine($"clusterjobs: {ex.Message}");
            stderr.WriteLine("Try 'clusterjobs --help'.");
            return 2;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl+C: a change already sent may still land (a replay or purge stops between pages of letters)
            stderr.WriteLine("clusterjobs: stopped; a change already sent may still have been made.");
            return 130;
        }
    }
}
