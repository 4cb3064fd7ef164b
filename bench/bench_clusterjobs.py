#!/usr/bin/python3
"""The benchmark kit's driver (../shared/bench-peers/bench.py) with ClusterJobs registered as a peer.

    bench_clusterjobs.py KIT_DIR --peer clusterjobs --mode 1node --workload W1 --n 20000 --reps 3
    bench_clusterjobs.py KIT_DIR --peer clusterjobs --mode 3nodes --workload W4 --n 20000   (W4 = W1 on a seed + 3 nodes)

Any kit peer (celery, rq, bullmq) runs through here too, unchanged. Result lines are the kit's, one per repetition.
Env: CJ_BENCH_DLL, CJ_SEED_DLL (built binaries), CJ_CONCURRENCY (slots per node, default 500), CJ_READ_AHEAD
(the nodes' CLUSTERJOBS_READ_AHEAD, default 256), CJ_PRODUCER_ENV (KEY=VALUE settings for the producer process only,
space-separated, for A/B runs: CJ_PRODUCER_ENV=DOTNET_TieredCompilation=1), CJ_HANGFIRE_DLL (the Hangfire peer, when built).
"""
import argparse, os, sys, time

from image_env import image_env

kit = os.path.abspath(sys.argv.pop(1))
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, kit)
os.chdir(kit)
import bench  # noqa: E402  (the kit's driver)
import redis  # noqa: E402


def consumers(r):
    """Clients of the bench Redis that wait for work: blocked in a pop (BLPOP, BZPOPMIN...) or subscribed (our nodes
    and floors wait on a wake channel, Hangfire on its own). The kit's own connections are neither."""
    return [c for c in r.client_list() if "b" in c.get("flags", "") or int(c.get("sub", 0)) or int(c.get("psub", 0))]


def require_no_other_consumers(grace_s=10.0):
    """A node or worker left from another run (or a second run at once) would take this run's jobs: its numbers would
    be nonsense (a W1 drain timed over the enqueue, say). Give one that is still shutting down a moment, then refuse."""
    r = redis.Redis.from_url(bench.BROKER)
    deadline = time.time() + grace_s
    while (found := consumers(r)) and time.time() < deadline:
        time.sleep(0.2)
    if found:
        who = "; ".join(f"addr={c.get('addr')} name={c.get('name') or '-'} cmd={c.get('cmd')}" for c in found)
        sys.exit(f"another consumer is connected to the bench Redis ({bench.BROKER}): {who}. A node or worker of another "
                 "run would take this run's jobs; stop it first.")

BENCH, SEED = os.environ["CJ_BENCH_DLL"], os.environ["CJ_SEED_DLL"]
SLOTS = os.environ.get("CJ_CONCURRENCY", "500")
# The node's read-ahead (default 256; docs/benchmarks.md, seventh session: W1 +5-6%, W4 +5%), explicit for A/B runs.
READ_AHEAD = os.environ.get("CJ_READ_AHEAD", "256")
PRODUCER_ENV = os.environ.get("CJ_PRODUCER_ENV", "").split()
SEED_PORT = 4790
# The nodes' Redis settings, for A/B runs of connection options (a StackExchange.Redis configuration string:
# CJ_NODE_REDIS_URL=127.0.0.1:6390,protocol=resp3); the producer and the kit keep the plain URL.
NODE_REDIS_URL = os.environ.get("CJ_NODE_REDIS_URL", "redis://127.0.0.1:6390/0")
COMMON = {"REDIS_URL": NODE_REDIS_URL, "CLUSTERJOBS_CONCURRENCY": SLOTS, "CLUSTER_IP": "127.0.0.1",
          "CLUSTERJOBS_READ_AHEAD": READ_AHEAD,
          "DOTNET_gcServer": "0"}


# Each process runs with its image's settings (the node's: DOTNET_ReadyToRun=0, CLUSTERJOBS_WARMUP_JOBS=1000), as it
# ships; one set in the environment wins, for A/B runs (DOTNET_ReadyToRun=1 bench/run.sh: ReadyToRun code).
IMAGE_ENV = {BENCH: image_env(os.path.join(repo, "src", "Node", "Dockerfile")),
             SEED: image_env(os.path.join(repo, "src", "Seed", "Dockerfile"))}


def cmd(dll, extra, *args):
    env = {**IMAGE_ENV[dll], **COMMON, **extra}
    return ["env", *[f"{k}={v}" for k, v in env.items()], "dotnet", dll, *args]


# The four processes are started together: no member is Up (and no job runs) until all four have joined, so W4 measures
# three working nodes, not the first one draining the queue while the others still start.
CLUSTER4 = {"CLUSTER_MIN_MEMBERS": "4"}
seeds = {"CLUSTER_SEEDS": f"akka.tcp://clusterjobs@127.0.0.1:{SEED_PORT}", "CLUSTER_PORT": "0", **CLUSTER4}
bench.PEERS["clusterjobs"] = dict(cwd=kit, enqueue=["env", "REDIS_URL=redis://127.0.0.1:6390/0", *PRODUCER_ENV, "dotnet", BENCH, "produce"], modes={
    # One node process that is its own one-node cluster: the normal mode (at-least-once, leases, results kept).
    "1node": [cmd(BENCH, {"CLUSTER_PORT": "0"}, "node")],
    # The same node with 2,000 slots: for IO-bound work (W3), as gevent -c100 and BullMQ c50 are the peers' choices there.
    "1node-c2000": [cmd(BENCH, {"CLUSTER_PORT": "0", "CLUSTERJOBS_CONCURRENCY": "2000"}, "node")],
    # W4: a seed and three nodes on this machine, the queue's router on one of them (remoting between nodes).
    "3nodes": [cmd(SEED, {"CLUSTER_PORT": str(SEED_PORT), "CLUSTER_SEEDS": "", **CLUSTER4})] + [cmd(BENCH, seeds, "node")] * 3,
})
# W2 latency floors without a node (bench/ClusterJobs.Bench/Floors.cs), as peers so the kit measures them the same way:
# "floor-blpop" is the least any Redis queue can do here (RPUSH, one consumer blocked in BLPOP, no lease, no record);
# "floor-take" is ClusterJobs' own Redis protocol (real producer, wake message, Take and Complete scripts) in one loop.
bench.PEERS["floor-blpop"] = dict(cwd=kit, enqueue=["env", "REDIS_URL=redis://127.0.0.1:6390/0", "dotnet", BENCH, "produce-list"],
                                  modes={"1proc": [cmd(BENCH, {}, "floor-blpop")]})
bench.PEERS["floor-take"] = dict(cwd=kit, enqueue=bench.PEERS["clusterjobs"]["enqueue"],
                                 modes={"1proc": [cmd(BENCH, {}, "floor-take")]})
# W4 floor: three of our nodes with no cluster between them (each its own one-node cluster and router, all taking from
# the same queue, nothing crossing remoting): what three node processes can do on this machine with our node at all.
bench.PEERS["floor-3solo"] = dict(cwd=kit, enqueue=bench.PEERS["clusterjobs"]["enqueue"],
                                  modes={"3solo": [cmd(BENCH, {"CLUSTER_PORT": "0"}, "node")] * 3})

# Hangfire 1.8 on its Redis storage (bench/ClusterJobs.HangfirePeer), the .NET peer: BackgroundJobClient.Enqueue one at a
# time, one server process with W workers (Hangfire's default on two cores is 10; each worker is a thread that runs one
# job at a time, an async job too). It runs with our node's runtime settings (JIT-compiled code, no tiering): W1 at
# 10,000 jobs did 805-1,076 jobs/s against 706-732 with ReadyToRun code.
if os.environ.get("CJ_HANGFIRE_DLL"):
    HANGFIRE = ["env", "REDIS_URL=redis://127.0.0.1:6390/0", "DOTNET_ReadyToRun=0", "dotnet", os.environ["CJ_HANGFIRE_DLL"]]
    bench.PEERS["hangfire"] = dict(cwd=kit, enqueue=HANGFIRE + ["produce"],
                                   modes={f"1proc-w{w}": [HANGFIRE + ["server", "--workers", str(w)]] for w in (10, 20, 50, 100)})

ap = argparse.ArgumentParser()
ap.add_argument("--peer", required=True, choices=bench.PEERS)
ap.add_argument("--mode", required=True)
ap.add_argument("--workload", required=True, choices=["W1", "W2", "W3", "W4"])
ap.add_argument("--n", type=int, default=20000)
ap.add_argument("--sleep-ms", type=float, default=20)
ap.add_argument("--rate", type=float, default=200)
ap.add_argument("--duration", type=float, default=15)
ap.add_argument("--reps", type=int, default=1)
ap.add_argument("--timeout", type=float, default=300)
ap.add_argument("--note", default="")
a = ap.parse_args()
os.makedirs(os.path.join(kit, "results"), exist_ok=True)
w4 = a.workload == "W4"
if w4:
    a.workload = "W1"  # the kit knows W1; the line is relabelled below
for rep in range(1, a.reps + 1):
    require_no_other_consumers()
    if not w4:
        bench.run_once(a, rep)
        continue
    import io, contextlib
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench.run_once(a, rep)
    print(out.getvalue().replace("workload=W1", "workload=W4", 1), end="", flush=True)
