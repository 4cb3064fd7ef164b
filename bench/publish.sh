# Sourced by bench/common.sh and bench/soak.sh.

# Published as the images ship it (src/Node/Dockerfile): Release, ReadyToRun; bench_clusterjobs.py runs each process
# with its image's DOTNET_ and CLUSTERJOBS_ settings too (the node's DOTNET_ReadyToRun=0: JIT-compiled code, faster than
# ReadyToRun's; CLUSTERJOBS_WARMUP_JOBS=1000: that code compiled before the node joins).
#   publish_build SOURCE_ROOT OUT   -> OUT/bench/ClusterJobs.Bench.dll, OUT/seed/ClusterJobs.Seed.dll
publish_build() {
  local p
  for p in "bench/ClusterJobs.Bench:bench" "src/Seed:seed"; do
    dotnet publish "$1/${p%%:*}" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
      -o "$2/${p#*:}" -v q -nologo >&2
  done
}
