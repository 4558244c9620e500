#!/usr/bin/env bash
# Brings up a single-node Slurm cluster on this machine (for the scheduler
# test and for trying pipelines/slurm/ and the Snakemake Slurm profile):
# munged, slurmctld and slurmd from the Debian packages (installed with
# apt-get when missing), one node with this machine's CPUs and memory, one
# partition. No accounting daemon: `sacct` does not work, `squeue` and
# `scontrol show job` do (finished jobs stay visible for MinJobAge=600 s).
#
#   scripts/slurm-up.sh [DIR]    (DIR default: /tmp/selfplay-slurm)
#
# The config goes where every Slurm command and job step looks for it,
# /etc/slurm/slurm.conf (a file there that this script did not write is
# left alone: then it stops with an error). DIR receives the daemons'
# state, spool, logs and pid files, and DIR/pids: the pids of the daemons
# this call started, which scripts/slurm-down.sh DIR stops (and nothing
# else). Idempotent: a cluster already up in DIR is left as it is.
# Needs root (it starts munged as user munge and slurmd as root).
set -euo pipefail
DIR="${1:-/tmp/selfplay-slurm}"
if [ "$#" -gt 1 ]; then
  echo "slurm-up: expected at most one argument, the state folder; got $*" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-up: needs root (starts munged and slurmd); run it as root or with sudo" >&2
  exit 2
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
CONF=/etc/slurm/slurm.conf
MARK="# Written by scripts/slurm-up.sh"
PIDS="$DIR/pids"

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$1" 2>/dev/null || true; }

# Already up in DIR: every recorded daemon still runs and the node answers.
if [ -f "$PIDS" ]; then
  up=1
  for p in $(cat "$PIDS"); do alive "$p" || up=0; done
  if [ "$up" = 1 ] && timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "slurm-up: already up in $DIR (pids $(tr '\n' ' ' < "$PIDS"))" >&2
    exit 0
  fi
  echo "slurm-up: $PIDS names daemons that are gone; stopping the rest and starting afresh" >&2
  "$(dirname "${BASH_SOURCE[0]}")/slurm-down.sh" "$DIR"
fi

# Packages, only when missing.
missing=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "slurm-up: ${missing[*]} missing and no apt-get to install them (Debian packages slurmctld slurmd slurm-client munge)" >&2
    exit 1
  fi
  echo "slurm-up: installing ${missing[*]} (Debian packages)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PATH="/usr/sbin:$PATH"

# munge: a key readable by munge alone, and munged running as munge.
if [ ! -s /etc/munge/munge.key ]; then
  install -d -o munge -g munge -m 700 /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
started=()
# DIR/pids lists what this call started so far, whatever fails next.
record() { if [ "${#started[@]}" -gt 0 ]; then printf '%s\n' "${started[@]}" > "$PIDS"; fi; }
munge_pid="$(pid_of /run/munge/munged.pid)"
if ! alive "$munge_pid"; then
  runuser -u munge -- munged
  munge_pid="$(pid_of /run/munge/munged.pid)"
  alive "$munge_pid" || { echo "slurm-up: munged did not start (see /var/log/munge/munged.log)" >&2; exit 1; }
  started+=("$munge_pid")
  record
fi

# slurm.conf for this node: its CPUs and layout from `slurmd -C`, memory
# less a margin for the daemons.
HOST="$(hostname -s)"
HW="$(slurmd -C | head -n 1)"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS="$(field CPUs)"
MEM="$(field RealMemory)"
MEM=$(( MEM - MEM / 10 - 256 ))
if [ -z "$CPUS" ] || [ "$MEM" -le 0 ]; then
  echo "slurm-up: could not read this node's CPUs and memory from 'slurmd -C': $HW" >&2
  exit 1
fi
if [ -f "$CONF" ] && [ "$(head -c ${#MARK} "$CONF")" != "$MARK" ]; then
  echo "slurm-up: $CONF exists and was not written by this script; not replacing this machine's Slurm config" >&2
  exit 1
fi
running="$(pgrep -d ' ' -x slurmctld || true) $(pgrep -d ' ' -x slurmd || true)"
if [ -n "${running// /}" ]; then
  echo "slurm-up: slurmctld or slurmd already runs (pids $running), not started by slurm-up.sh $DIR; stop it first" >&2
  exit 1
fi
# A fresh cluster: no jobs recovered from an earlier one's state.
rm -rf "$DIR/state" "$DIR/spool"
mkdir -p "$DIR/state" "$DIR/spool" "$(dirname "$CONF")"
cat > "$CONF.tmp.$$" <<EOF
$MARK: a single-node cluster, no accounting ($DIR).
ClusterName=selfplay
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
SlurmdTimeout=60
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp.$$" "$CONF"

slurmctld -c -i -f "$CONF"
slurmd -f "$CONF"
for _ in $(seq 1 50); do
  [ -s "$DIR/slurmctld.pid" ] && [ -s "$DIR/slurmd.pid" ] && break
  sleep 0.1
done
failed=""
for f in slurmctld slurmd; do
  p="$(pid_of "$DIR/$f.pid")"
  if alive "$p"; then
    started+=("$p")
    record
  else
    failed="$failed $f"
  fi
done
if [ -n "$failed" ]; then
  echo "slurm-up:$failed did not start (see $DIR/slurmctld.log, $DIR/slurmd.log; scripts/slurm-down.sh $DIR stops the rest)" >&2
  exit 1
fi

# Wait for the node to take jobs.
for _ in $(seq 1 100); do
  state="$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)"
  case "$state" in
    idle|mix|alloc) echo "slurm-up: node $HOST $state, $CPUS CPUs, ${MEM} MB (pids ${started[*]}; $DIR)" >&2
      exit 0 ;;
  esac
  sleep 0.2
done
echo "slurm-up: node $HOST not idle after 20 s (state '${state:-none}'; see $DIR/slurmctld.log, $DIR/slurmd.log)" >&2
exit 1
