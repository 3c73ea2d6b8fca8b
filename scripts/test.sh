#!/usr/bin/env bash
# Quick start, command two: build runyard twice, plainly (build/) and under
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/), and run every
# test against both: the C unit tests with meson, then the integration suite
# (tests/integration, which drives the real daemon and CLI) with pytest; then
# the web page's browser tests (tests/browser) against the plain build.
# Every suite writes JUnit XML; the last line printed is the total:
#   N passed, N failed[, N skipped]
# and the exit status is non-zero if anything failed or nothing ran.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
export PYTHONDONTWRITEBYTECODE=1

junits=()       # JUnit files to count
failed_steps=() # steps that failed before producing any JUnit

step() { # step NAME COMMAND...: run a step, remember it when it fails
	local name=$1
	shift
	echo
	echo "=== $name"
	if ! "$@"; then
		failed_steps+=("$name")
		return 1
	fi
}

suite() { # NAME COMMAND...: a suite counts through its JUnit; one that wrote none is a failed step
	local name=$1 before=${#junits[@]}
	shift
	echo
	echo "=== $name"
	"$@"
	if [ ${#junits[@]} -eq "$before" ]; then
		failed_steps+=("$name: no JUnit written")
	fi
}

configure_and_build() { # DIR MESON-SETUP-OPTIONS...
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" || return 1
	fi
	ninja -C "$dir"
}

meson_unit() { # DIR: meson's unit suite, JUnit in DIR/meson-logs/testlog.junit.xml
	local dir=$1
	rm -f "$dir/meson-logs/testlog.junit.xml"
	meson test -C "$dir" --suite unit --print-errorlogs
	local rc=$?
	if [ -f "$dir/meson-logs/testlog.junit.xml" ]; then
		junits+=("$dir/meson-logs/testlog.junit.xml")
	fi
	return $rc
}

integration() { # DIR: the pytest suite against the binaries in DIR
	local dir=$1
	local xml="$root/$dir/meson-logs/integration.junit.xml"
	mkdir -p "$root/$dir/meson-logs"
	rm -f "$xml"
	RUNYARD_BUILD="$root/$dir" /usr/bin/python3 -m pytest tests/integration \
		-p no:cacheprovider -q -rfEs --durations=10 --junitxml="$xml" \
		-o junit_suite_name="integration-$dir"
	local rc=$?
	if [ -f "$xml" ]; then
		junits+=("$xml")
	fi
	return $rc
}

browser() { # DIR: the browser suite (tests/browser, node's test runner driving Debian's
	# chromium through playwright-core) against the daemon in DIR
	local dir=$1
	local xml="$root/$dir/meson-logs/browser.junit.xml"
	mkdir -p "$root/$dir/meson-logs"
	rm -f "$xml"
	RUNYARD_BUILD="$root/$dir" RUNYARD_BROWSER_OUT="$root/$dir/meson-logs/browser" \
		node --test --test-concurrency=1 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=junit --test-reporter-destination="$xml" tests/browser/
	local rc=$?
	if [ -f "$xml" ]; then
		junits+=("$xml")
	fi
	return $rc
}

built=()
web_ready=false
if step "dependencies" bash scripts/deps.sh; then
	step "web dependencies (npm ci, chromium)" bash scripts/web-setup.sh && web_ready=true
	step "build (debugoptimized)" configure_and_build build --buildtype=debugoptimized &&
		built+=(build)
	step "build-asan (debug, address+undefined sanitizers)" configure_and_build build-asan \
		--buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false &&
		built+=(build-asan)
fi

for dir in "${built[@]}"; do
	if [ "$dir" = build-asan ]; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	fi
	suite "unit tests ($dir)" meson_unit "$dir"
	suite "integration tests ($dir)" integration "$dir"
	unset ASAN_OPTIONS UBSAN_OPTIONS
done

# The page is the same for both builds: it runs against the plain one.
if [ "$web_ready" = true ] && [[ " ${built[*]} " == *" build "* ]]; then
	suite "browser tests (build)" browser build
fi

echo
echo "=== summary"
/usr/bin/python3 - "${#failed_steps[@]}" "${failed_steps[@]}" -- "${junits[@]}" <<'PY'
import sys
import xml.etree.ElementTree as ET

args = sys.argv[1:]
n_steps = int(args[0])
steps = args[1:1 + n_steps]
files = args[args.index("--", 1 + n_steps) + 1:]

RANK = {"passed": 0, "skipped": 1, "failed": 2}
results = {}  # (file, classname, name) -> status
for path in files:
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as e:
        steps.append("reading %s (%s)" % (path, e))
        continue
    # Keyed by the suite too: node's reporter gives every case the class "test".
    cases = [(suite.get("name", ""), case) for suite in tree.iter("testsuite")
             for case in suite.findall("testcase")]
    for suite, case in cases:
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            status = "failed"
        elif "skipped" in tags:
            status = "skipped"
        else:
            status = "passed"
        key = (path, suite, case.get("classname", ""), case.get("name", ""))
        if RANK[status] >= RANK.get(results.get(key), -1):
            results[key] = status

counts = {"passed": 0, "failed": 0, "skipped": 0}
for (path, suite, cls, name), status in sorted(results.items()):
    counts[status] += 1
    if status == "failed":
        print("FAILED  %s  (%s)" % ("::".join(p for p in (cls, name) if p), path))
for s in steps:
    print("FAILED  step: %s" % s)
counts["failed"] += len(steps)

line = "%d passed, %d failed" % (counts["passed"], counts["failed"])
if counts["skipped"]:
    line += ", %d skipped" % counts["skipped"]
print(line)
sys.exit(1 if counts["failed"] or not counts["passed"] else 0)
PY
