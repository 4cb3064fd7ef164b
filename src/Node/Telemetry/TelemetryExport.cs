using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ClusterJobs.Node.Telemetry;

public static class TelemetryExport
{
    /// <summary>
    /// Sends the node's metrics (<see cref="JobMetrics.MeterName"/>, with the .NET runtime's) and its job spans
    /// (<see cref="JobTracing.SourceName"/>, and <see cref="ProducerTracing.SourceName"/> for the enqueues of its own
    /// <see cref="JobClient"/>) over OTLP, configured by the standard OpenTelemetry variables:
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, <c>OTEL_EXPORTER_OTLP_PROTOCOL</c> (grpc or http/protobuf),
    /// <c>OTEL_METRIC_EXPORT_INTERVAL</c> and <c>OTEL_BSP_SCHEDULE_DELAY</c> (ms), <c>OTEL_TRACES_SAMPLER</c>,
    /// <c>OTEL_SERVICE_NAME</c> (default clusterjobs-node). The stock node calls it when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; a host of its own handlers may call it, or add the meter and the
    /// sources to its own OpenTelemetry setup instead.
    /// </summary>
    public static IServiceCollection AddClusterJobsTelemetryExport(this IServiceCollection services)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") is { Length: > 0 } name ? name : "clusterjobs-node"))
            .WithMetrics(m => m.AddMeter(JobMetrics.MeterName, "System.Runtime").AddOtlpExporter())
            .WithTracing(t => t.AddSource(JobTracing.SourceName, ProducerTracing.SourceName).AddOtlpExporter());
        return services;
    }

    /// <summary>The name of <see cref="AddClusterJobsTelemetryExport"/> before it exported spans too.</summary>
    [Obsolete("Use AddClusterJobsTelemetryExport, which exports the job spans with the metrics.")]
    public static IServiceCollection AddClusterJobsMetricsExport(this IServiceCollection services) => services.AddClusterJobsTelemetryExport();
}
