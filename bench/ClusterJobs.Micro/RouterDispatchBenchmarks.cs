using Akka.Actor;
using BenchmarkDotNet.Attributes;
using ClusterJobs.Node.Ingress;
using ClusterJobs.Node.Routing;
using ClusterJobs.Node.Workers;
using ClusterJobs.Protocol;

namespace ClusterJobs.Micro;

/// <summary>
/// The router's dispatch without Redis: an ingress stub answers every Fetch at once with that many jobs, four pools
/// of 64 slots hand their slots straight back; measured per job routed (Demand -> Fetch -> Taken -> Dispatch).
/// </summary>
[MemoryDiagnoser, InvocationCount(1)]
public class RouterDispatchBenchmarks
{
    private const int Jobs = 100_000;
    private ActorSystem _system = null!;

    [GlobalSetup]
    public void Setup() => _system = ActorSystem.Create("micro-router");

    [GlobalCleanup]
    public Task Cleanup() => _system.Terminate();

    [Benchmark(OperationsPerInvoke = Jobs)]
    public async Task RouteJobs()
    {
        var done = new TaskCompletionSource();
        var counter = new JobCounter(Jobs, done);
        var router = _system.ActorOf(Props.Create(() => new QueueRouterActor("bench", Props.Create(() => new InstantIngress()))));
        for (var i = 0; i < 4; i++) _system.ActorOf(Props.Create(() => new EchoPool(router, 64, counter)));
        await done.Task;
        _system.Stop(router);
    }

    private sealed class JobCounter(int target, TaskCompletionSource done)
    {
        private int _count;
        public void Add(int n) { if (Interlocked.Add(ref _count, n) >= target) done.TrySetResult(); }
    }

    private sealed class InstantIngress : ReceiveActor
    {
        private static readonly JobLease Job = new(new JobEnvelope { Id = "bench:1", Task = "noop", Queue = "bench" }, 1);

        public InstantIngress() =>
            Receive<QueueIngress.Fetch>(f => Sender.Tell(new QueueIngress.Taken(Enumerable.Repeat(Job, Math.Min(f.Max, 256)).ToList(), false)));
    }

    private sealed class EchoPool : ReceiveActor
    {
        public EchoPool(IActorRef router, int slots, JobCounter counter)
        {
            router.Tell(new QueueRouter.Demand(slots, true));
            Receive<WorkerPool.Dispatch>(d =>
            {
                counter.Add(d.Jobs.Count);
                Sender.Tell(new QueueRouter.Demand(d.Jobs.Count, true));
            });
        }
    }
}
