#!/usr/bin/env bash
# Install the Debian packages runyard needs to build, test and run its example.
# Quick and quiet when everything is there: apt-get only runs for what is missing.
set -euo pipefail

packages=(
	build-essential meson ninja-build pkg-config
	libuv1-dev libcjson-dev libsqlite3-dev libarchive-dev libcurl4-openssl-dev libssl-dev libyaml-dev
	libmicrohttpd-dev chromium
	python3-pytest python3-sklearn python3-joblib python3-optuna python3-pandas
	python3-flask gunicorn  # bench/serving.py: the Azure peer's stack beside runyard's
	task-spooler git
)

installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
	if ! grep -qx "$p installed" <<<"$installed"; then
		missing+=("$p")
	fi
done

# The one-node Slurm cluster of the Slurm target's tests (tests/integration/
# test_slurm.py, bench/slurm.py). Optional: without it those tests skip.
slurm() {
	bash "$(dirname "$0")/slurm-cluster.sh" install ||
		echo "deps: Slurm could not be installed; the Slurm target's tests will skip" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
	slurm
	exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
slurm
