#!/usr/bin/env bash
# Install everything and run the whole test suite: lint, format check and pytest against a real
# Redis server started for this run. Extra arguments go to pytest:
#
#   bash scripts/test.sh                     # everything
#   bash scripts/test.sh -q tests/limits     # a subset
#
# Set GIGAWATT_TEST_REDIS_URL to use a Redis server you already run instead of starting one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
export DEBIAN_FRONTEND=noninteractive

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

apt_updated=0
apt_install() {
    local -a sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root or sudo to install $*"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null || die "apt-get not found: install $* yourself"
    log "installing $* with apt-get"
    if [[ "$apt_updated" -eq 0 ]]; then
        "${sudo[@]}" apt-get update -qq
        apt_updated=1
    fi
    "${sudo[@]}" apt-get install -y -qq "$@" </dev/null
}

# --- Python environment -------------------------------------------------------------------------
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    if ! python3 -m venv .venv; then
        # Debian's own python3 ships venv without ensurepip until python3-venv is installed.
        rm -rf .venv
        apt_install python3-venv
        python3 -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q -e '.[test]'

# --- Redis --------------------------------------------------------------------------------------
redis_pid=""
redis_dir=""
cleanup() {
    if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    if [[ -n "$redis_dir" ]]; then
        rm -rf "$redis_dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    .venv/bin/python -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

redis_ping() {
    local port=$1
    if command -v redis-cli >/dev/null; then
        [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]
    else
        .venv/bin/python -c "import redis, sys
sys.exit(0 if redis.Redis(port=$port, socket_timeout=1).ping() else 1)" 2>/dev/null
    fi
}

# Starts redis-server on a free port; prints the port. Retries with another port if one was taken
# between choosing it and binding it.
start_redis() {
    local attempt port i
    for attempt in 1 2 3; do
        port="$(free_port)"
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$redis_dir" >"$redis_dir/redis.log" 2>&1 &
        redis_pid=$!
        for ((i = 0; i < 100; i++)); do # up to 10 s
            if redis_ping "$port"; then
                echo "$port"
                return 0
            fi
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
        log "redis-server did not answer PING on port $port (attempt $attempt); its log:"
        sed 's/^/    /' "$redis_dir/redis.log" >&2 || true
    done
    return 1
}

if [[ -n "${GIGAWATT_TEST_REDIS_URL:-}" ]]; then
    log "using the Redis server at GIGAWATT_TEST_REDIS_URL=$GIGAWATT_TEST_REDIS_URL"
else
    command -v redis-server >/dev/null || apt_install redis-server
    command -v redis-server >/dev/null || die "redis-server is still not on PATH after installing"
    redis_dir="$(mktemp -d)"
    # start_redis runs in this shell (not a subshell) so that cleanup can see redis_pid.
    start_redis >"$redis_dir/port" || die "could not start redis-server"
    port="$(<"$redis_dir/port")"
    export GIGAWATT_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    log "redis-server (pid $redis_pid) ready at $GIGAWATT_TEST_REDIS_URL"
fi

# The upstream client's TLS test makes its certificate with the openssl command.
command -v openssl >/dev/null || apt_install openssl

# --- Lint, then tests ---------------------------------------------------------------------------
# A lint failure fails the run, but pytest still runs so one CI pass reports both.
lint_rc=0
lint_dirs=()
for d in src tests benchmarks; do
    [[ -d "$d" ]] && lint_dirs+=("$d")
done
if [[ ${#lint_dirs[@]} -gt 0 ]]; then
    .venv/bin/ruff check "${lint_dirs[@]}" || lint_rc=1
    .venv/bin/ruff format --check "${lint_dirs[@]}" || lint_rc=1
fi

pytest_rc=0
.venv/bin/python -m pytest "$@" || pytest_rc=$?

if [[ "$pytest_rc" -eq 5 ]]; then
    log "error: pytest collected no tests (exit 5); a test run that tests nothing is a failure"
    exit 5
fi
if [[ "$lint_rc" -ne 0 ]]; then
    log "error: ruff found problems (see above); pytest exited $pytest_rc"
    exit 1
fi
exit "$pytest_rc"
