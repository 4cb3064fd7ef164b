#!/usr/bin/python3
"""The .NET runtime settings an image ships with: the DOTNET_* variables of a Dockerfile's ENV lines.

The harness runs its nodes with them, so the numbers are those of the image (src/Node/Dockerfile sets
DOTNET_ReadyToRun=0). Prints KEY=VALUE lines; bench_clusterjobs.py imports runtime_env().
    image_env.py src/Node/Dockerfile
"""
import shlex, sys


def runtime_env(dockerfile):
    env = {}
    for line in open(dockerfile):
        words = shlex.split(line, comments=True)
        if len(words) < 2 or words[0].upper() != "ENV":
            continue
        pairs = words[1:] if "=" in words[1] else [f"{words[1]}={' '.join(words[2:])}"]  # ENV K=V K2=V2 | ENV K V
        env.update(p.split("=", 1) for p in pairs if p.startswith("DOTNET_"))
    return env


if __name__ == "__main__":
    for k, v in runtime_env(sys.argv[1]).items():
        print(f"{k}={v}")
