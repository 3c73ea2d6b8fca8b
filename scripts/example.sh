#!/usr/bin/env bash
# Quick start, command one: build runyard, start a private daemon, train the
# seed's iris model through it, look at the run, download its outputs and
# show its metrics.
# Everything it keeps is under .runyard-example/ in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build
fi
ninja -C build

state="$root/.runyard-example"
sock="$state/runyard.sock"
mkdir -p "$state"

runyard() {
	"$root/build/cli/runyard" --socket "$sock" "$@"
}

json_field() { # json_field EXPR: evaluate a Python expression on the JSON document j from stdin
	/usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# A daemon left running by an interrupted example: stop it first.
if runyard daemon status >/dev/null 2>&1; then
	echo "== stopping the daemon left running on $sock"
	runyard daemon stop >/dev/null || true
	for _ in $(seq 100); do
		runyard daemon status >/dev/null 2>&1 || break
		sleep 0.1
	done
fi

echo "== starting runyardd (state in $state, log in $state/runyardd.log)"
"$root/build/daemon/runyardd" --state-dir "$state" --socket "$sock" \
	</dev/null >>"$state/runyardd.log" 2>&1 &
daemon_pid=$!

stop_daemon() {
	if kill -0 "$daemon_pid" 2>/dev/null; then
		echo "== stopping runyardd"
		kill -TERM "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
}
trap stop_daemon EXIT

for _ in $(seq 300); do
	if runyard daemon status >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$daemon_pid" 2>/dev/null; then
		echo "runyardd exited at start; its log:" >&2
		tail -n 20 "$state/runyardd.log" >&2
		exit 1
	fi
	sleep 0.1
done
runyard daemon status

echo
echo "== runyard submit --experiment iris ... -- train_iris.py --kernel linear --penalty 1.0"
set +e
runyard submit --experiment iris --source examples/iris --python /usr/bin/python3 \
	--show-output -- train_iris.py --kernel linear --penalty 1.0
submit_rc=$?
set -e

run=$(runyard runs --experiment iris --limit 1 --json | json_field 'j["runs"][0]["id"]')

echo
echo "== runyard show $run"
runyard show "$run"

echo
echo "== runyard outputs $run"
runyard outputs "$run"

echo
echo "== runyard outputs $run --download .runyard-example/download"
rm -rf "$state/download"
runyard outputs "$run" --download "$state/download"
find "$state/download" -type f | sed "s|^$root/||"

echo
echo "== runyard metrics $run"
runyard metrics "$run"

status=$(runyard show "$run" --json | json_field 'j["status"]')
if [ "$status" != "Completed" ] || [ "$submit_rc" -ne 0 ]; then
	echo "the run ended $status (submit exited $submit_rc)" >&2
	exit 1
fi
echo
echo "== run $run completed; the model is in .runyard-example/download"
echo "== to see the run in a browser (the page needs bash scripts/web-setup.sh once):"
echo "   build/daemon/runyardd --state-dir .runyard-example --socket .runyard-example/runyard.sock &"
echo "   build/cli/runyard --socket .runyard-example/runyard.sock ui --open"
