#!/usr/bin/python3
"""The settings an image ships with: the DOTNET_* and CLUSTERJOBS_* variables of a Dockerfile's ENV lines.

The harness runs its nodes with them, so the numbers are those of the image (src/Node/Dockerfile sets
DOTNET_ReadyToRun=0 and CLUSTERJOBS_WARMUP_JOBS=1000). What the harness sets itself (CLUSTERJOBS_CONCURRENCY...) wins. Prints KEY=VALUE lines, except those already set in the environment (which win, for A/B runs:
DOTNET_ReadyToRun=1 bench/trace_drain.sh); bench_clusterjobs.py imports image_env().
    image_env.py src/Node/Dockerfile
"""
import os, shlex, sys


def runtime_env(dockerfile):
    env = {}
    for line in open(dockerfile):
        if not line.lstrip().upper().startswith("ENV "):
            continue  # only ENV lines are parsed: a RUN line may hold anything
        words = shlex.split(line, comments=True)
        pairs = words[1:] if "=" in words[1] else [f"{words[1]}={' '.join(words[2:])}"]  # ENV K=V K2=V2 | ENV K V
        env.update(p.split("=", 1) for p in pairs if p.startswith(("DOTNET_", "CLUSTERJOBS_")))
    return env


def image_env(dockerfile):
    """runtime_env() without the settings the environment already has."""
    return {k: v for k, v in runtime_env(dockerfile).items() if k not in os.environ}


if __name__ == "__main__":
    for k, v in image_env(sys.argv[1]).items():
        print(f"{k}={v}")
