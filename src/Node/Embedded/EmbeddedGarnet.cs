using System.Net;
using System.Net.Sockets;
using Garnet;

namespace ClusterJobs.Node.Embedded;

/// <summary>
/// An in-process Garnet server on loopback: the zero-setup broker used when no REDIS_URL is given. Lua runs in
/// transaction mode so each script locks the keys it names (our scripts all name their queue's sets, so scripts of one
/// queue run one at a time, as on Redis). For development and demos; production runs a real Redis.
/// </summary>
public sealed class EmbeddedGarnet : IDisposable
{
    private readonly GarnetServer _server;

    public EmbeddedGarnet(int port = 0, string? password = null, string memory = "1g")
    {
        Port = port == 0 ? FreePort() : port;
        var args = new List<string>
        {
            "--bind", "127.0.0.1", "--port", Port.ToString(),
            "--lua", "true", "--lua-transaction-mode", "true",
            // Without a storage tier a full log evicts keys silently: size it far above a dev workload (allocated lazily).
            "--memory", memory, "--page", "1m", "--index", "16m",
            "-q", "--logger-level", "Error", "--disable-console-logger", "true",
        };
        if (password is not null) args.AddRange(["--auth", "Password", "--password", password]);
        _server = new GarnetServer(args.ToArray());
        _server.Start();
    }

    public int Port { get; }
    public string Url => $"redis://127.0.0.1:{Port}";

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }

    public void Dispose() => _server.Dispose();
}
