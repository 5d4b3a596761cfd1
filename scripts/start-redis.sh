#!/usr/bin/env bash
# Start a private redis-server on loopback for tests and benchmarks; print its URL on stdout.
#
#   url=$(scripts/start-redis.sh [start])    # installs redis-server (Debian) only if missing
#   scripts/start-redis.sh start PORT        # on that port (a killed instance started again, empty)
#   scripts/start-redis.sh kill URL          # SIGKILL, as a crash would: no shutdown, nothing saved
#   scripts/start-redis.sh stop [URL]        # stops the instance URL names (by its pid file), or else
#                                            # the one the last 'start' printed
#
# The instance keeps nothing on disk (--save '' --appendonly no), listens on 127.0.0.1 only, and
# lives in its own directory under ${MDE_REDIS_DIR:-/tmp}/mde-redis-<port>/ (pid file, log).
set -euo pipefail

base_dir="${MDE_REDIS_DIR:-${TMPDIR:-/tmp}}"

stop() {
  local url="$1" port dir pid
  port="${url##*:}"; port="${port%%/*}"
  dir="$base_dir/mde-redis-$port"
  if [[ -f "$dir/redis.pid" ]]; then
    pid="$(cat "$dir/redis.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}

last_file="$base_dir/mde-redis-last-url"

wanted_port=""
case "${1:-start}" in
  start) wanted_port="${2:-}" ;;
  kill)
    [[ -n "${2:-}" ]] || { echo "usage: start-redis.sh kill redis://127.0.0.1:PORT/0" >&2; exit 2; }
    port="${2##*:}"; port="${port%%/*}"
    pid="$(cat "$base_dir/mde-redis-$port/redis.pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] || { echo "start-redis: no instance on port $port" >&2; exit 1; }
    kill -KILL "$pid" 2>/dev/null || true
    # Dead once gone, or a zombie (it holds no port; its reaper, PID 1 here, may take a second or more).
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || exit 0
      [[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]] || exit 0
      sleep 0.02
    done
    echo "start-redis: pid $pid did not die" >&2
    exit 1 ;;
  stop|--stop)
    url="${2:-$(cat "$last_file" 2>/dev/null || true)}"
    [[ -n "$url" ]] || { echo "start-redis: no instance to stop" >&2; exit 0; }
    stop "$url"
    [[ "$(cat "$last_file" 2>/dev/null || true)" == "$url" ]] && rm -f "$last_file"
    exit 0 ;;
  *) echo "usage: start-redis.sh [start [PORT]] | kill URL | stop [redis://127.0.0.1:PORT/0]" >&2; exit 2 ;;
esac

if ! command -v redis-server >/dev/null 2>&1; then
  echo "start-redis: installing redis-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi

free_port() {
  python3 - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

for attempt in 1 2 3 4 5; do
  port="${wanted_port:-$(free_port)}"
  dir="$base_dir/mde-redis-$port"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
       --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" >&2; then
    for _ in $(seq 1 100); do
      if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
        echo "redis://127.0.0.1:$port/0" > "$last_file"
        echo "redis://127.0.0.1:$port/0"
        exit 0
      fi
      sleep 0.05
    done
  fi
  echo "start-redis: attempt $attempt on port $port failed; log:" >&2
  cat "$dir/redis.log" >&2 2>/dev/null || true
  stop "redis://127.0.0.1:$port/0"
  [[ -z "$wanted_port" ]] || sleep 0.2  # the port may still be in TIME_WAIT's hands: try it again shortly
done
echo "start-redis: could not start redis-server" >&2
exit 1
