#!/usr/bin/env bash
# A real single-node Slurm on this machine for the tests (Debian bookworm: slurm-wlm 22.05, munge).
# Idempotent: installs what is missing, (re)writes the config, starts daemons that are not running,
# waits until the node is idle. No accounting database: job states come from `scontrol show job`
# (kept for MinJobAge). Slurm 22.05 has no CgroupPlugin=disabled, so no cgroup.conf is written and
# proctrack/linuxproc + task/none use no cgroups.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v runc >/dev/null; then
  echo "CI: installing slurm-wlm, munge, runc"
  apt-get update -qq && apt-get install -y -qq slurm-wlm munge runc >/dev/null
fi

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge; chmod 0755 /run/munge; chmod 0400 /etc/munge/munge.key
alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
for _ in $(seq 1 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done

host="$(hostname -s)"
hardware="$(slurmd -C | head -1 | grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*')"
memory="$(slurmd -C | head -1 | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
mkdir -p /etc/slurm /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /run/slurm
cat > /etc/slurm/slurm.conf.new <<CONF
ClusterName=local
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MinJobAge=3600
KillWait=5
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
NodeName=${host} NodeAddr=127.0.0.1 ${hardware} RealMemory=$(( memory * 9 / 10 )) State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
# Slurm's own OCI containers (srun --container=BUNDLE) through runc, for the container_runtime: oci test
mkdir -p /run/slurm-oci
cat > /etc/slurm/oci.conf <<'CONF'
RunTimeQuery="runc --root=/run/slurm-oci state %n.%u.%j.%s.%t"
RunTimeKill="runc --root=/run/slurm-oci kill -a %n.%u.%j.%s.%t SIGKILL"
RunTimeDelete="runc --root=/run/slurm-oci delete --force %n.%u.%j.%s.%t"
RunTimeRun="runc --root=/run/slurm-oci run %n.%u.%j.%s.%t -b %b"
CONF
if ! cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; then
  mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
  for daemon in slurmd slurmctld; do  # a changed config needs fresh daemons (reconfigure cannot change all of it)
    if alive "/run/slurm/$daemon.pid"; then kill "$(cat "/run/slurm/$daemon.pid")"; sleep 1; fi
  done
else
  rm -f /etc/slurm/slurm.conf.new
fi
alive /run/slurm/slurmctld.pid || /usr/sbin/slurmctld -i
alive /run/slurm/slurmd.pid || /usr/sbin/slurmd
for _ in $(seq 1 120); do
  case "$(sinfo -h -n "$host" -o '%t' 2>/dev/null | head -1)" in
    idle|mix|alloc) echo "CI: Slurm ready (node $host)"; exit 0 ;;
    down*|drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "CI: the Slurm node did not become idle" >&2; tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2; exit 1
