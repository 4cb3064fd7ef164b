using System.Net;
using ClusterJobs.Node.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterJobs.Node.Operator;

/// <summary>
/// Serves the operator API and dashboard on the node's own HTTP port (CLUSTERJOBS_HTTP_PORT): a small Kestrel app beside
/// the node, sharing its services and its log. Started after the actor system, stopped before it.
/// </summary>
public sealed class OperatorHttpService : IHostedService
{
    private readonly IServiceProvider _node;
    private readonly ILogger<OperatorHttpService> _log;
    private readonly OperatorHttpSettings? _settings;
    private IAsyncDisposable? _app;

    internal OperatorHttpService(IServiceProvider node, OperatorHttpSettings? settings, ILogger<OperatorHttpService> log)
    {
        _node = node;
        _settings = settings;
        _log = log;
    }

    /// <summary>Where it listens once started (the port it was given, or the one picked for port 0); null when off.</summary>
    public Uri? Address { get; private set; }

    /// <summary>Off unless a port was set; then ASP.NET Core is loaded, and not before (a node without it stays smaller).</summary>
    public Task StartAsync(CancellationToken ct) => _settings is null ? Task.CompletedTask : StartServerAsync(_settings, ct);

    public Task StopAsync(CancellationToken ct) => _app is null ? Task.CompletedTask : StopServerAsync(ct);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private async Task StartServerAsync(OperatorHttpSettings settings, CancellationToken ct)
    {
        var node = _node;
        // Not the host's args or ASPNETCORE_ settings: the container image's ASPNETCORE_HTTP_PORTS is not ours.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], EnvironmentName = Environments.Production });
        // Into the node's log, warnings and worse only: not a line per request.
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new NodeLog(node.GetRequiredService<ILoggerFactory>()));
        builder.Logging.AddFilter((_, level) => level >= LogLevel.Warning);
        builder.Services.AddSingleton(node.GetRequiredService<OperatorApi>());
        builder.Services.AddProblemDetails();
        builder.WebHost.UseKestrel(k =>
        {
            if (settings.Host is "*" or "0.0.0.0") k.ListenAnyIP(settings.Port);
            else if (settings.Host == "localhost") k.ListenLocalhost(settings.Port);
            else k.Listen(IPAddress.Parse(settings.Host), settings.Port);
        });
        // Only requests that name an allowed host: a web page whose name was made to point here (DNS rebinding) names
        // its own host, and is refused. On loopback the loopback names unless told otherwise.
        IReadOnlyList<string> allowed = settings.AllowedHosts.Count > 0 ? settings.AllowedHosts
            : settings.Host is "127.0.0.1" or "localhost" or "::1" ? ["localhost", "127.0.0.1", "[::1]"] : [];
        if (allowed.Count > 0) builder.Services.AddHostFiltering(o => o.AllowedHosts = [.. allowed]);
        var app = builder.Build();
        if (allowed.Count > 0) app.UseHostFiltering();
        app.UseStatusCodePages();
        app.MapClusterJobsOperator(token: settings.Token);
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync();
            throw new ArgumentException($"the operator HTTP port {settings.Host}:{settings.Port} is taken ({ex.Message}); " +
                                        "set CLUSTERJOBS_HTTP_PORT to a free port.", ex);
        }
        _app = app;
        Address = new Uri(app.Urls.First().Replace("[::]", "localhost").Replace("0.0.0.0", "localhost") + "/");
        _log.LogInformation("Operator dashboard and API on {Address} ({Guard})", Address,
            settings.Token is null ? "open to anyone who can reach it: set CLUSTERJOBS_HTTP_TOKEN to require a token" : "its token required");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private async Task StopServerAsync(CancellationToken ct)
    {
        var app = (WebApplication)_app!;
        await app.StopAsync(ct);
        await app.DisposeAsync();
    }
}

/// <summary>Writes the dashboard's web server's log lines through the node's own loggers.</summary>
internal sealed class NodeLog(ILoggerFactory node) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => node.CreateLogger(categoryName);
    public void Dispose() { } // the node's factory is the node's to dispose
}

/// <summary>The operator HTTP port's settings, taken from <see cref="ClusterJobsOptions"/> when the node is built.</summary>
internal sealed record OperatorHttpSettings(string Host, int Port, string? Token, IReadOnlyList<string> AllowedHosts);
