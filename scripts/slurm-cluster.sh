#!/usr/bin/env bash
# A one-node Slurm cluster under a temporary directory, for runyard's tests and
# benchmarks (docs/compute-targets.md).
#
#   scripts/slurm-cluster.sh start [DIR]   install Debian's slurm packages when missing,
#                                           start munged, slurmctld, slurmd and slurmrestd
#                                           (on a Unix socket), wait until the node takes
#                                           jobs, and print the socket's path
#   scripts/slurm-cluster.sh stop DIR       kill every process that start started, by pid
#   scripts/slurm-cluster.sh install        only install the packages (scripts/deps.sh)
#   scripts/slurm-cluster.sh rest-stop DIR  stop only slurmrestd (tests of an outage)
#   scripts/slurm-cluster.sh rest-start DIR start it again on the same socket
#
# DIR (default: a new /tmp/ry-slurm.XXXXXX; keep it short, it holds Unix sockets)
# keeps everything: slurm.conf (SLURM_CONF=DIR/slurm.conf for sbatch, squeue,
# scontrol), the logs, the state, and DIR/pids. The daemons run as root (this
# machine's CI does), on ports picked free at start, so two clusters can run at
# once. start exits non-zero, with the reason on stderr and the logs' tails,
# when the cluster cannot start; whatever it started by then is stopped again.
set -uo pipefail

die() {
	echo "slurm-cluster: $*" >&2
	exit 1
}

stop_cluster() { # DIR
	local dir=$1 pid
	[ -f "$dir/pids" ] || return 0
	# Newest first: slurmrestd, slurmd, slurmctld, munged.
	for pid in $(tac "$dir/pids"); do
		kill -TERM "$pid" 2>/dev/null
	done
	for _ in $(seq 50); do
		local alive=0
		for pid in $(cat "$dir/pids"); do
			if kill -0 "$pid" 2>/dev/null; then
				alive=1
			fi
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for pid in $(cat "$dir/pids"); do
		kill -KILL "$pid" 2>/dev/null
	done
	rm -f "$dir/pids"
}

install_missing() {
	local packages=(slurm-wlm slurmctld slurmd slurm-client slurmrestd munge) missing=() p installed
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
	for p in "${packages[@]}"; do
		grep -qx "$p installed" <<<"$installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "slurm-cluster: installing ${missing[*]}" >&2
	local sudo=()
	[ "$(id -u)" -ne 0 ] && sudo=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	# Packages' own start scripts must not start system-wide daemons: this
	# cluster runs its own, under DIR.
	"${sudo[@]}" apt-get update -q >&2 || return 1
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

free_ports() { # N: print N free TCP ports on loopback
	/usr/bin/python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

tails() { # DIR: the logs' last lines, for a failed start
	local f
	for f in "$1"/*.log; do
		[ -f "$f" ] || continue
		echo "--- $f" >&2
		tail -n 15 "$f" >&2
	done
}

start_cluster() { # [DIR]
	local dir=${1:-}
	if [ -z "$dir" ]; then
		dir=$(mktemp -d /tmp/ry-slurm.XXXXXX) || die "cannot make a temporary directory"
	fi
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || die "cannot use $dir"
	[ -f "$dir/pids" ] && die "$dir already has a running cluster (stop it first)"
	install_missing || die "cannot install Slurm (apt-get failed)"
	for cmd in munged slurmctld slurmd slurmrestd sinfo; do
		command -v "$cmd" >/dev/null || die "$cmd is not installed"
	done
	chmod 0700 "$dir"
	mkdir -p "$dir/ctld" "$dir/spool" "$dir/jobs"
	chmod 0755 "$dir/jobs"

	local host ports ctld_port slurmd_port cpus mem
	host=$(hostname -s)
	read -r ctld_port slurmd_port <<<"$(free_ports 2)"
	[ -n "$slurmd_port" ] || die "cannot find free ports"
	cpus=$(nproc)
	# What the node really has, less a margin, so slurmd never finds less.
	mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

	head -c 1024 /dev/urandom >"$dir/munge.key"
	chmod 0400 "$dir/munge.key"
	: >"$dir/plugstack.conf"
	cat >"$dir/slurm.conf" <<EOF
# A one-node cluster for runyard's tests (scripts/slurm-cluster.sh).
ClusterName=runyard
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=256
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job is canceled or times out:
# at least runyard's --grace, so the supervisor records how the run ended.
KillWait=10
InactiveLimit=0
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
	export SLURM_CONF=$dir/slurm.conf
	: >"$dir/pids"

	munged -F --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" \
		--pid-file="$dir/munged.pidfile" --log-file="$dir/munged.log" \
		--seed-file="$dir/munged.seed" >>"$dir/munged.log" 2>&1 </dev/null &
	echo $! >>"$dir/pids"
	wait_for "munged" 100 test -S "$dir/munge.sock" || return 1

	slurmctld -D -c -f "$dir/slurm.conf" >>"$dir/slurmctld.out.log" 2>&1 </dev/null &
	echo $! >>"$dir/pids"
	slurmd -D -f "$dir/slurm.conf" >>"$dir/slurmd.out.log" 2>&1 </dev/null &
	echo $! >>"$dir/pids"
	wait_for "the node to be idle" 300 node_idle || return 1

	start_rest || return 1
	echo "$dir/slurmrestd.sock"
}

start_rest() { # uses $dir
	rm -f "$dir/slurmrestd.sock"
	SLURM_CONF=$dir/slurm.conf SLURMRESTD_SECURITY=disable_user_check \
		slurmrestd -a rest_auth/local -s openapi/v0.0.38 "unix:$dir/slurmrestd.sock" \
		>>"$dir/slurmrestd.log" 2>&1 </dev/null &
	echo $! >"$dir/slurmrestd.pid"
	echo $! >>"$dir/pids"
	wait_for "slurmrestd" 100 test -S "$dir/slurmrestd.sock"
}

stop_rest() { # DIR
	local dir=$1 pid
	pid=$(cat "$dir/slurmrestd.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	grep -vx "$pid" "$dir/pids" >"$dir/pids.new"
	mv "$dir/pids.new" "$dir/pids"
	rm -f "$dir/slurmrestd.pid" "$dir/slurmrestd.sock"
}

node_idle() {
	local state
	state=$(sinfo -h -o %T 2>/dev/null) || return 1
	[ "$state" = idle ]
}

wait_for() { # WHAT TENTHS COMMAND...: poll COMMAND every 0.1 s; on a time-out, fail the start
	local what=$1 tenths=$2 pid
	shift 2
	for _ in $(seq "$tenths"); do
		"$@" && return 0
		for pid in $(cat "$dir/pids"); do
			if ! kill -0 "$pid" 2>/dev/null; then
				echo "slurm-cluster: a daemon (pid $pid) exited while waiting for $what" >&2
				tails "$dir"
				stop_cluster "$dir"
				return 1
			fi
		done
		sleep 0.1
	done
	echo "slurm-cluster: timed out waiting for $what" >&2
	tails "$dir"
	stop_cluster "$dir"
	return 1
}

case "${1:-}" in
install)
	install_missing || die "cannot install Slurm (apt-get failed)"
	;;
start)
	start_cluster "${2:-}"
	;;
stop)
	[ -n "${2:-}" ] || die "usage: $0 stop DIR"
	stop_cluster "$2"
	;;
rest-stop)
	[ -n "${2:-}" ] || die "usage: $0 rest-stop DIR"
	stop_rest "$2"
	;;
rest-start)
	[ -n "${2:-}" ] && [ -f "$2/pids" ] || die "usage: $0 rest-start DIR (of a running cluster)"
	dir=$(cd "$2" && pwd)
	start_rest || exit 1
	;;
*)
	echo "usage: $0 start [DIR] | stop DIR | install | rest-stop DIR | rest-start DIR" >&2
	exit 1
	;;
esac
