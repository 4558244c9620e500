#!/usr/bin/env bash
# Stops the daemons scripts/slurm-up.sh DIR started, by the pids it recorded
# in DIR/pids (nothing else), and waits for them to exit. Jobs still queued
# or running on that cluster are cancelled first (their steps would outlive
# slurmd). Idempotent.
#
#   scripts/slurm-down.sh [DIR]    (DIR default: /tmp/selfplay-slurm)
set -euo pipefail
DIR="${1:-/tmp/selfplay-slurm}"
if [ "$#" -gt 1 ]; then
  echo "slurm-down: expected at most one argument, the state folder; got $*" >&2
  exit 2
fi
PIDS="$DIR/pids"
if [ ! -f "$PIDS" ]; then
  echo "slurm-down: nothing recorded in $PIDS; nothing to stop" >&2
  exit 0
fi
pids=()
for p in $(cat "$PIDS"); do
  case "$p" in *[!0-9]*|'') continue ;; esac
  pids+=("$p")
done
# Cancel what is left on the cluster while slurmctld still answers.
if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
  jobs="$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)"
  if [ -n "${jobs// /}" ]; then
    echo "slurm-down: cancelling jobs $jobs" >&2
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 150); do
      [ -z "$(timeout 10 squeue -h -o %A 2>/dev/null || true)" ] && break
      sleep 0.2
    done
  fi
fi
# slurmd and slurmctld first (recorded last), munged last.
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
  kill -TERM "${pids[$i]}" 2>/dev/null || true
done
for _ in $(seq 1 100); do
  left=()
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
  [ "${#left[@]}" = 0 ] && break
  sleep 0.1
done
for p in "${left[@]}"; do
  echo "slurm-down: pid $p still running after 10 s; sending KILL" >&2
  kill -KILL "$p" 2>/dev/null || true
done
rm -f "$PIDS"
echo "slurm-down: stopped ${pids[*]:-nothing} ($DIR)" >&2
