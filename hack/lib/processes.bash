# Processes and ports of the local clusters, shared by hack/control-plane and hack/node
# (sourced, not run).

free_ports() {
  # Bind all at once so the ports differ; the kernel picks unused ones.
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# start NAME DIR COMMAND...: run detached from our stdio (callers capture it), log to DIR/NAME.log
# (appended, so a restarted component keeps its earlier lines).
start() {
  local name=$1 dir=$2
  shift 2
  nohup "$@" >> "$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}

# alive PID: running and not a zombie (an unreaped child still answers `kill -0`).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# owned_pid DIR NAME: the PID recorded in DIR/NAME.pid if that process still runs and its command
# line mentions DIR (a guard against PID reuse); fails otherwise.
owned_pid() {
  local dir=$1 name=$2 pid
  [[ -f $dir/$name.pid ]] || return 1
  pid=$(cat "$dir/$name.pid")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$dir" || return 1
  echo "$pid"
}
