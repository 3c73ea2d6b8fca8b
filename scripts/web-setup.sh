#!/usr/bin/env bash
# Install what the web page and its browser tests need: the npm packages of
# package.json (uPlot, which the daemon serves under /vendor/, and
# playwright-core, which drives the browser) and Debian's chromium.
# Idempotent and quiet when everything is there: npm ci only runs when
# package-lock.json changed since the last install (a stamp in node_modules/),
# apt-get only when /usr/bin/chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt (e.g. scripts/deps.sh in the background) may hold the lock:
# wait for it rather than fail.
apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends)
install() { # PACKAGE...: from Debian's archive, updating the lists once if needed
	"${apt[@]}" install "$@" >&2 || {
		"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -q update >&2
		"${apt[@]}" install "$@" >&2
	}
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "web-setup: installing nodejs and npm" >&2
	install nodejs npm
fi

stamp=node_modules/.runyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] ||
	[ ! -f node_modules/uplot/dist/uPlot.iife.min.js ] ||
	[ ! -f node_modules/playwright-core/package.json ]; then
	echo "web-setup: npm ci" >&2
	npm ci --no-audit --no-fund --loglevel=error >&2
	echo "$want" >"$stamp"
fi

if [ ! -x /usr/bin/chromium ]; then
	echo "web-setup: installing chromium" >&2
	install chromium
	[ -x /usr/bin/chromium ] || {
		echo "web-setup: /usr/bin/chromium is still missing" >&2
		exit 1
	}
fi
