#!/usr/bin/env bash
# make kind-down: delete the kind cluster and what kind/up.sh built under build/kind/.
set -euo pipefail
# shellcheck source=kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools kind
load_facts
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  say "no kind cluster $CLUSTER"
fi
rm -rf "$BUILD_DIR"
