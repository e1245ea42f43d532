#!/usr/bin/env bash
# Install the real services the integration tests run: Prometheus, Alertmanager and
# Chromium from Debian, a JRE and Maven, and the Kafka broker's jars from Maven Central.
#
# Idempotent and fast when everything is present (no apt-get, no Maven). Prints one line
# per component; exits non-zero with a clear message on a real failure.
#
#   scripts/setup-test-deps.sh            # as root (or with sudo available)
#   PYTHON=.venv/bin/python scripts/setup-test-deps.sh
#
# Env: CALLPULSE_CACHE (default ~/.cache/callpulse) holds kafka-<version>/libs.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

say() { printf '%-13s %s\n' "$1:" "$2"; }
die() { printf 'setup-test-deps: %s\n' "$*" >&2; exit 1; }

# binary name(s) -> Debian package. Debian ships Alertmanager as prometheus-alertmanager.
declare -A PACKAGE_OF=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [chromium]=chromium
  [java]=openjdk-17-jre-headless
  [mvn]=maven
)
COMPONENTS=(prometheus promtool alertmanager amtool chromium java mvn)

find_bin() {  # print the path of a component's binary, or fail
  case "$1" in
    alertmanager) command -v alertmanager || command -v prometheus-alertmanager ;;
    *) command -v "$1" ;;
  esac
}

run_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"
  fi
}

# --- Debian packages, only those whose binary is missing -------------------------------
missing_pkgs=()
for c in "${COMPONENTS[@]}"; do
  if ! find_bin "$c" >/dev/null; then
    pkg="${PACKAGE_OF[$c]}"
    [[ " ${missing_pkgs[*]} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
  fi
done

if [ "${#missing_pkgs[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${missing_pkgs[*]} and no apt-get to install them"
  say apt "installing ${missing_pkgs[*]}"
  # Package maintainer scripts try to start prometheus/alertmanager as services; on these
  # machines that is refused. A temporary policy-rc.d answering 101 ("action forbidden")
  # makes invoke-rc.d/deb-systemd-invoke skip the start instead of failing the install.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | run_as_root tee "$policy" >/dev/null
    run_as_root chmod 755 "$policy"
    made_policy=1
  fi
  cleanup_policy() { if [ "$made_policy" -eq 1 ]; then run_as_root rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  log="$(mktemp -t callpulse-apt.XXXXXX)"
  apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
  if ! run_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get update failed (log: $log)"
  fi
  if ! run_as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" \
      "${missing_pkgs[@]}" >>"$log" 2>&1; then
    # Tolerated only if every binary is there afterwards (checked below).
    say apt "apt-get install reported an error (log: $log); checking the binaries"
  else
    rm -f "$log"
  fi
  cleanup_policy
  trap - EXIT
fi

# --- Check every binary and print one line per component --------------------------------
failed=0
for c in "${COMPONENTS[@]}"; do
  if path="$(find_bin "$c")"; then
    # Whole output first, then its first line: piping into `head` would SIGPIPE the tool
    # and trip pipefail.
    case "$c" in
      java) out="$("$path" -version 2>&1 || true)" ;;
      mvn) out="$("$path" -v 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || true)" ;;
      # Debian's chromium wrapper prints a shell error on stderr on big-memory machines.
      chromium) out="$("$path" --version 2>/dev/null || true)" ;;
      *) out="$("$path" --version 2>&1 || true)" ;;
    esac
    version="${out%%$'\n'*}"
    say "$c" "$path (${version:-version unknown})"
  else
    say "$c" "MISSING: apt-get install -y --no-install-recommends ${PACKAGE_OF[$c]}"
    failed=1
  fi
done
[ "$failed" -eq 0 ] || die "some components are missing (see above)"

# --- Kafka jars: the same code path the tests use ----------------------------------------
command -v "$PYTHON" >/dev/null || die "no Python interpreter '$PYTHON' (set PYTHON=...)"
libs="$(cd "$REPO_ROOT" && PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c '
import sys
from devtools.kafka import ensure_kafka_jars
from devtools.procs import ServiceError
try:
    libs = ensure_kafka_jars()
except ServiceError as exc:
    sys.exit(f"kafka jars: {exc}")
print(libs)
')" || die "could not prepare the Kafka jars"
say kafka "$(find "$libs" -name '*.jar' | wc -l) jars in $libs"
