using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Remote.Hosting;

namespace ClusterJobs.Node.Hosting;

/// <summary>
/// How a process joins the cluster. Shared by the node and the seed (the seed links this file). From the environment:
/// CLUSTER_IP (address others reach us at), CLUSTER_PORT, CLUSTER_SEEDS (comma-separated akka.tcp:// addresses),
/// CLUSTER_NAME (actor system name, default clusterjobs), CLUSTER_HEARTBEAT_PAUSE (seconds of silence before a member is
/// unreachable; default 3 from cluster.hocon, raise it on machines that stall, such as a busy CI box),
/// CLUSTER_MIN_MEMBERS (members, seeds included, that must have joined before any is Up and work starts; default 1).
/// </summary>
public sealed record ClusterBootstrap
{
    public const string DefaultSystemName = "clusterjobs";

    public string SystemName { get; init; } = DefaultSystemName;
    /// <summary>The address other nodes reach this one at (advertised). Binds to all interfaces when not loopback.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (fine for worker nodes; seeds need a fixed one).</summary>
    public int Port { get; init; }
    public IReadOnlyList<string> Seeds { get; init; } = [];
    public IReadOnlyList<string> Roles { get; init; } = [];
    /// <summary>The failure detector's acceptable heartbeat pause; null keeps cluster.hocon's.</summary>
    public TimeSpan? HeartbeatPause { get; init; }
    /// <summary>
    /// Members that must have joined before the leader moves any of them Up; until then no router starts and no job
    /// runs. For processes started together: the first up does not take the whole queue while the others start.
    /// </summary>
    public int? MinMembers { get; init; }

    public static ClusterBootstrap FromEnvironment(Func<string, string?>? env = null, int defaultPort = 0, params string[] roles)
    {
        env ??= Environment.GetEnvironmentVariable;
        var port = env("CLUSTER_PORT");
        var systemName = NonEmpty(env("CLUSTER_NAME")) ?? DefaultSystemName;
        // Akka's own rule for an actor system's name, checked here so that the message names the variable.
        if (!System.Text.RegularExpressions.Regex.IsMatch(systemName, "^[a-zA-Z0-9][a-zA-Z0-9-]*$"))
            throw new ArgumentException($"CLUSTER_NAME '{systemName}' is not an actor system name: letters, digits and '-' (not first) only.");
        return new ClusterBootstrap
        {
            SystemName = systemName,
            Host = NonEmpty(env("CLUSTER_IP")) is { } ip
                ? Uri.CheckHostName(ip) != UriHostNameType.Unknown ? ip
                    : throw new ArgumentException($"CLUSTER_IP '{ip}' is neither an IP address nor a host name (the address other members reach this one at).")
                : NonEmpty(env("DOTNET_RUNNING_IN_CONTAINER")) is not null ? System.Net.Dns.GetHostName() : "127.0.0.1",
            Port = string.IsNullOrWhiteSpace(port) ? defaultPort
                : int.TryParse(port, out var p) && p is >= 0 and <= 65535 ? p
                : throw new ArgumentException($"CLUSTER_PORT '{port}' is not a port number."),
            Seeds = (env("CLUSTER_SEEDS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(seed => ValidateSeed(seed, systemName)).ToArray(),
            Roles = roles,
            HeartbeatPause = NonEmpty(env("CLUSTER_HEARTBEAT_PAUSE")) is { } pause ? Seconds(pause, "CLUSTER_HEARTBEAT_PAUSE", 0.001, 3_600) : null,
            MinMembers = NonEmpty(env("CLUSTER_MIN_MEMBERS")) is { } min
                ? int.TryParse(min, out var m) && m >= 1 ? m : throw new ArgumentException($"CLUSTER_MIN_MEMBERS '{min}' is not a number of members (1 or more).")
                : null,
        };
    }

    /// <summary>
    /// A setting in seconds, from <paramref name="min"/> to <paramref name="max"/>: a value past them (1e300, Infinity, NaN,
    /// negative) is refused naming the setting, where converting it to a time span threw an exception of its own.
    /// </summary>
    public static TimeSpan Seconds(string text, string setting, double min, double max) =>
        double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s >= min && s <= max
            ? TimeSpan.FromSeconds(s)
            : throw new ArgumentException($"{setting} '{text}' is not a number of seconds from {min.ToString(System.Globalization.CultureInfo.InvariantCulture)} to {max.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");

    /// <summary>CLUSTER_NAME, or the default name: every process of a cluster must use the same.</summary>
    public static string SystemNameFromEnvironment(Func<string, string?>? env = null) =>
        NonEmpty((env ?? Environment.GetEnvironmentVariable)("CLUSTER_NAME")) ?? DefaultSystemName;

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    /// <summary>
    /// A seed address Akka can parse (else the actor system fails to start with an unhandled UriFormatException), of
    /// this cluster's actor system (a seed of another name is never joined: the node would wait alone, saying nothing).
    /// </summary>
    private static string ValidateSeed(string seed, string systemName)
    {
        var shape = $"CLUSTER_SEEDS entry '{seed}' must look like akka.tcp://{systemName}@host:port";
        if (!seed.StartsWith("akka.tcp://", StringComparison.Ordinal) || !seed.Contains('@')) throw new ArgumentException(shape + ".");
        Akka.Actor.Address address;
        try
        {
            address = Akka.Actor.Address.Parse(seed);
        }
        catch (UriFormatException ex)
        {
            throw new ArgumentException($"{shape}: {ex.Message}");
        }
        if (address.Port is not (> 0 and <= 65535) || string.IsNullOrEmpty(address.Host))
            throw new ArgumentException($"{shape}: it needs a host and a port from 1 to 65535.");
        if (address.System != systemName)
            throw new ArgumentException($"CLUSTER_SEEDS entry '{seed}' is a member of actor system '{address.System}', but this " +
                                        $"process's is '{systemName}' (CLUSTER_NAME): every process of a cluster must use the same name.");
        return seed;
    }

    /// <summary>cluster.hocon (embedded in this assembly), remoting and clustering; with no seeds, the node joins itself.</summary>
    public AkkaConfigurationBuilder Apply(AkkaConfigurationBuilder builder)
    {
        var loopback = Host is "127.0.0.1" or "localhost" or "::1";
        builder.AddHocon(Overrides(), HoconAddMode.Prepend);
        builder
            .AddHocon(LoadClusterHocon(), HoconAddMode.Append)
            .WithRemoting(new RemoteOptions
            {
                HostName = loopback ? Host : "0.0.0.0",
                PublicHostName = Host,
                Port = Port,
            })
            .WithClustering(new ClusterOptions
            {
                Roles = Roles.ToArray(),
                SeedNodes = Seeds.ToArray(),
                SplitBrainResolver = new KeepMajorityOption(),
            });
        if (Seeds.Count == 0)
            builder.AddStartup((system, _) => Akka.Cluster.Cluster.Get(system).Join(Akka.Cluster.Cluster.Get(system).SelfAddress));
        return builder.AddDownedNotice();
    }

    /// <summary>
    /// A clear message when <paramref name="error"/> (what starting the host threw) is the cluster port being taken, a
    /// second seed or node on the same port; null otherwise. Akka wraps it in five AggregateExceptions.
    /// </summary>
    public static string? PortTakenMessage(Exception error)
    {
        var pending = new Stack<Exception>([error]);
        while (pending.TryPop(out var e))
        {
            if (e is Akka.Remote.RemoteTransportException { InnerException: System.Net.Sockets.SocketException
                { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse } })
                return $"{e.Message.Replace(" See InnerException for details.", "").TrimEnd('.')}: the address is already in use (another " +
                       "seed or node on this port?). Set CLUSTER_PORT to a free port (0: any free port, for a node).";
            if (e is AggregateException all) foreach (var inner in all.InnerExceptions) pending.Push(inner);
            else if (e.InnerException is { } inner) pending.Push(inner);
        }
        return null;
    }

    /// <summary>What the environment changes in cluster.hocon's defaults (empty when nothing).</summary>
    public Config Overrides()
    {
        var hocon = new System.Text.StringBuilder();
        if (HeartbeatPause is { } pause) hocon.AppendLine($"akka.cluster.failure-detector.acceptable-heartbeat-pause = {(int)pause.TotalMilliseconds}ms");
        if (MinMembers is { } min) hocon.AppendLine($"akka.cluster.min-nr-of-members = {min}");
        return ConfigurationFactory.ParseString(hocon.ToString());
    }

    public static Config LoadClusterHocon()
    {
        var assembly = typeof(ClusterBootstrap).Assembly;
        var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("cluster.hocon", StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}
