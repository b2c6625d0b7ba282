#!/usr/bin/env bash
# make kind-e2e (after kind/up.sh): run the three reference pipelines in the kind cluster through the
# api-server and wait for success. On failure, print what an SRE would look at first.
set -euo pipefail
# shellcheck source=kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools kubectl curl python3
load_facts
mkdir -p "$BUILD_DIR"

diagnose() {
  say "diagnostics"
  "${KUBE[@]}" -n "$NAMESPACE" get pods -o wide || true
  "${KUBE[@]}" -n "$NAMESPACE" get events --sort-by=.lastTimestamp | tail -n 30 || true
  "${KUBE[@]}" -n "$NAMESPACE" logs "deployment/$RELEASE-scheduler" --all-containers --tail 100 || true
  "${KUBE[@]}" -n "$NAMESPACE" get pods -l kubernetes_executor=True \
    -o custom-columns=POD:.metadata.name,DAG:.metadata.labels.dag_id,TASK:.metadata.labels.task_id,PHASE:.status.phase || true
}

finish() {
  local status=$?
  stop_port_forward
  ((status == 0)) || diagnose
  exit "$status"
}
trap finish EXIT

port_forward "$NAMESPACE" "$RELEASE-api-server" 8080
say "running the reference pipelines through $PF_URL"
"$EKSFLOW" pipelines --api-url "$PF_URL" --timeout "${PIPELINE_TIMEOUT:-900}"
