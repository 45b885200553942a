#!/usr/bin/env bash
# berth's main job, end to end on this machine: make a base image, then run containers that show the playbook's
# Part 1 (namespaces, cgroups, layered filesystem) and Scenarios B and C. Uses its own state root and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_ROOT=${BERTH_ROOT:-$(mktemp -d /tmp/berth-demo.XXXXXX)}
work=$(mktemp -d)
cleanup() {
  ids=$(berth ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && berth rm -f $ids >/dev/null 2>&1 || true
  rm -rf "$work" "$BERTH_ROOT"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

scripts/make-busybox-image.sh "$work/busybox.tar"
step "Import a base image (Debian's busybox-static)" berth import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest

# The main job: build a sample app and run it.
cp -r examples/hello "$work/hello"
echo "s3cr3t-token" > "$work/token"
step "Build the sample app (two stages, a build secret)" berth build --secret id=token,src="$work/token" -t hello:1 "$work/hello"
step "Run it" berth run --rm hello:1
step "Rebuild with nothing changed: every step CACHED" berth build --secret id=token,src="$work/token" -t hello:1 "$work/hello"
echo "one more line" >> "$work/hello/src/hello.txt"
step "Change one source file: only the steps that read it (and later ones) rebuild, and say why" berth build --secret id=token,src="$work/token" -t hello:1 "$work/hello"
step "The secret is nowhere in the image history" berth history hello:1
step "List images" berth images
step "PID namespace: the command is PID 1" berth run --rm busybox sh -c 'echo "my pid is $$"; ps'
step "UTS namespace: its own hostname" berth run --rm --hostname demo-box busybox hostname
step "Mount namespace + overlayfs: image layers read-only under a thin writable layer" berth run --rm busybox sh -c 'grep " / " /proc/self/mounts'
step "Network namespace: only loopback (--network none)" berth run --rm busybox ip -o link
step "cgroups: 0.5 CPU, 64 MiB memory, 50 pids" berth run --rm --cpus 0.5 -m 64m --pids-limit 50 busybox sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us'
printf '\n\033[1m== OOM kill: exit 137 and OOMKilled\033[0m\n'
berth run --name hog -m 16m --memory-swap 16m busybox sh -c 'dd if=/dev/zero of=/dev/null bs=64M count=1' || echo "exit code: $?"
step "inspect" berth inspect -f 'OOMKilled={{.State.OOMKilled}} ExitCode={{.State.ExitCode}}' hog
berth rm hog >/dev/null
step "Security: non-root user from the image's /etc/passwd, read-only root" berth run --rm -u app --read-only busybox sh -c 'id; touch /x || true'
step "Scenario B: override the entrypoint of a crashing container" berth run --rm --entrypoint /bin/echo busybox "a shell-less look inside"
printf '\n\033[1m== Scenario C: PID 1 and signals\033[0m\n'
berth run -d --name noinit busybox sh -c 'sleep 600' >/dev/null
berth run -d --name withinit --init busybox sh -c 'sleep 600' >/dev/null
s=$(date +%s.%N); berth stop -t 3 noinit >/dev/null; e=$(date +%s.%N)
printf 'without --init: sh as PID 1 ignores SIGTERM, stop took %.2fs (grace period, then SIGKILL)\n' "$(echo "$e - $s" | bc)"
s=$(date +%s.%N); berth stop -t 3 withinit >/dev/null; e=$(date +%s.%N)
printf 'with --init:    tini forwards SIGTERM,  stop took %.2fs\n' "$(echo "$e - $s" | bc)"
step "Exit codes survive the container" berth ps -a --format 'table {{.Names}}\t{{.Status}}'
berth rm noinit withinit >/dev/null
step "A detached container outlives the CLI; logs are kept" berth run -d --name bg busybox sh -c 'for i in 1 2 3; do echo tick $i; sleep 0.2; done'
berth wait bg >/dev/null
step "logs" berth logs -t bg
berth rm bg >/dev/null
printf '\nDemo done; state root %s is removed on exit.\n' "$BERTH_ROOT"
