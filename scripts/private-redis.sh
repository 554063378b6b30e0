# Sourced by run-local.sh. A private Redis for one `make run`: listening on a unix socket only (no
# TCP port; socket and folder readable by this user alone), keeping nothing on disk (what it holds
# -- ?wait= wake-ups, classify/ frames and answers, API throttle windows, retention caps -- is
# transient by design), stopped with the rest of the run.

# private_redis_start DIR: start redis-server in the background with its socket in DIR, add its
# pid to the caller's `pids`, wait until it listens and export STEELQC_EVENTS_REDIS_URL.
private_redis_start() {
  local dir="$1"
  # A unix socket's path holds at most 107 bytes: a deep checkout gets a private temporary folder.
  if [ "${#dir}" -gt 90 ]; then dir="$(mktemp -d -t steelqc-redis.XXXXXX)"; fi
  mkdir -p "$dir" && chmod 700 "$dir"
  local socket="$dir/redis.sock"
  rm -f "$socket"
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 --save "" --appendonly no \
    --dir "$dir" --loglevel warning --logfile "$dir/redis.log" &
  local pid=$!
  local _
  for _ in $(seq 100); do
    if [ -S "$socket" ]; then
      pids+=("$pid")
      export STEELQC_EVENTS_REDIS_URL="unix://$socket"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  return 1
}
