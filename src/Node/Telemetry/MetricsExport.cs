using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ClusterJobs.Node.Telemetry;

public static class MetricsExport
{
    /// <summary>
    /// Sends the node's metrics (<see cref="JobMetrics.MeterName"/>) and the .NET runtime's over OTLP, configured by the
    /// standard OpenTelemetry variables: <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>
    /// (grpc or http/protobuf), <c>OTEL_METRIC_EXPORT_INTERVAL</c> (ms), <c>OTEL_SERVICE_NAME</c> (default
    /// clusterjobs-node). The stock node calls it when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; a host of its own
    /// handlers may call it, or add the meter to its own OpenTelemetry setup instead.
    /// </summary>
    public static IServiceCollection AddClusterJobsMetricsExport(this IServiceCollection services)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") is { Length: > 0 } name ? name : "clusterjobs-node"))
            .WithMetrics(m => m.AddMeter(JobMetrics.MeterName, "System.Runtime").AddOtlpExporter());
        return services;
    }
}
