#!/usr/bin/env bash
# Shared by kind/up.sh, kind/e2e.sh and kind/down.sh (sourced, not run).
# Names come from `eksflow kind facts` (the Python home of namespace, release and Secret names).

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$KIND_DIR")"
BUILD_DIR="$REPO_DIR/build/kind"
EKSFLOW="${EKSFLOW:-$REPO_DIR/.venv/bin/eksflow}"
# Bounded waits (seconds).
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'kind: %s\n' "$*" >&2; exit 2; }

# One clear line per missing tool, before anything changes.
require_tools() {
  local tool missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing tools: ${missing[*]} (kind: https://kind.sigs.k8s.io; helm and kubectl: make tools)"
  fi
  if [[ " $* " == *" docker "* ]] && ! docker info >/dev/null 2>&1; then
    die "Docker is not running (docker info failed): start Docker, then run this again"
  fi
  [[ -x "$EKSFLOW" ]] || die "$EKSFLOW not found: run make venv"
}

# Set by load_facts from `eksflow kind facts`; used by the scripts that source this file.
# shellcheck disable=SC2034
CLUSTER="" NAMESPACE="" RELEASE="" DB_SECRET="" AWS_SECRET="" DEPS_NAMESPACE="" KUBE=()

load_facts() {
  local facts
  facts="$("$EKSFLOW" kind facts)" || die "eksflow kind facts failed"
  eval "$facts"
  KUBE=(kubectl --context "kind-$CLUSTER")
}

# port_forward NAMESPACE SERVICE PORT: forwards a free local port to the Service; sets PF_PID and PF_URL.
port_forward() {
  local namespace="$1" service="$2" port="$3" local_port attempt
  local_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "${KUBE[@]}" -n "$namespace" port-forward --address 127.0.0.1 "svc/$service" "$local_port:$port" \
    >"$BUILD_DIR/port-forward-$service.log" 2>&1 &
  PF_PID=$!
  PF_URL="http://127.0.0.1:$local_port"
  for attempt in $(seq 1 60); do
    # Any HTTP answer (even an error status) means the forward works.
    if curl -sS -o /dev/null "$PF_URL/" 2>/dev/null; then
      return 0
    fi
    kill -0 "$PF_PID" 2>/dev/null || die "port-forward to $service stopped: $(cat "$BUILD_DIR/port-forward-$service.log")"
    sleep 1
  done
  die "port-forward to $service did not answer within 60 s (attempt $attempt)"
}

stop_port_forward() {
  if [[ -n "${PF_PID:-}" ]]; then
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
    PF_PID=""
  fi
}
