using ClusterJobs.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClusterJobs.Node.Demo;

/// <summary>
/// `ClusterJobs.Node demo`: a node in this process (on embedded Garnet unless REDIS_URL is set) runs the seed
/// article's send_email jobs; this enqueues them through the producer client and prints each result.
/// </summary>
public static class DemoRunner
{
    public static async Task<int> RunAsync(IHost host, TextWriter output)
    {
        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<JobClient>();
            var recipients = new[] { "ada@example.com", "grace@example.com", "linus@example.com", "barbara@example.com", "not-an-address" };
            var ids = new List<string>();
            foreach (var recipient in recipients)
                ids.Add(await client.EnqueueAsync("send_email", new SendEmailArgs(recipient)));
            ids.Add(await client.EnqueueAsync("add", new[] { 2, 40 }));
            // 5,000 numbers: over the sum task's chunk size, so it splits into child jobs and reduces their sums.
            ids.Add(await client.EnqueueAsync("sum", new { items = Enumerable.Range(1, 5_000) }));
            output.WriteLine($"Enqueued {ids.Count} jobs; waiting for their results...");
            foreach (var id in ids)
            {
                var job = await client.WaitAsync(id, TimeSpan.FromSeconds(30));
                var detail = job.State == JobState.Succeeded ? job.Result?.GetRawText() : job.Error?.Message;
                output.WriteLine($"{job.Task,-11} {id}  {job.State.ToWire(),-13} {detail}");
            }
            return 0;
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
