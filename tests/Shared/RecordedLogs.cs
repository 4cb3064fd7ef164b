using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ClusterJobs.Tests.Shared;

/// <summary>A logger provider that keeps every line logged at <paramref name="least"/> or above, for specs to read.</summary>
public sealed class RecordedLogs(LogLevel least = LogLevel.Warning) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly LogLevel _least = least;

    public IReadOnlyList<string> Lines => _lines.ToArray();

    public ILogger CreateLogger(string categoryName) => new Recorder(this, categoryName);

    public void Dispose() { }

    private sealed class Recorder(RecordedLogs logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= logs._least;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) logs._lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)}");
        }
    }
}
