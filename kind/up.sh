#!/usr/bin/env bash
# make kind-up: a kind cluster running eksflow from this checkout — the image built here, an in-cluster
# PostgreSQL, the AWS emulator (seeded) and a copy of this repository at HEAD for git-sync — installed with
# helm/eksflow/values-kind.yaml exactly like a real deploy (helm upgrade --install --wait --rollback-on-failure).
# Re-running it updates the cluster to the current HEAD.
set -euo pipefail
# shellcheck source=kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools docker kind kubectl helm git curl python3
load_facts
cd "$REPO_DIR"
mkdir -p "$BUILD_DIR"
revision="$(git rev-parse HEAD)"
image_tag="kind-$(git rev-parse --short=12 HEAD)"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "kind cluster $CLUSTER exists"
else
  say "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config "$KIND_DIR/cluster.yaml" --wait 180s
fi

say "building images (eksflow:$image_tag, the emulator, the DAG repository at $revision)"
docker build --quiet -t "eksflow:$image_tag" --build-arg REVISION="$revision" --build-arg VERSION="$image_tag" .
docker build --quiet -t eksflow-emulator:kind --build-arg BASE="eksflow:$image_tag" -f kind/emulator.Dockerfile .
rm -rf "$BUILD_DIR/repo" && mkdir -p "$BUILD_DIR/repo"
git init --quiet --bare "$BUILD_DIR/repo/eksflow.git"
git push --quiet --force "$BUILD_DIR/repo/eksflow.git" "$revision:refs/heads/main"
git --git-dir="$BUILD_DIR/repo/eksflow.git" symbolic-ref HEAD refs/heads/main
# Plain-HTTP ("dumb") git clients read these index files instead of talking to a git server.
git --git-dir="$BUILD_DIR/repo/eksflow.git" update-server-info
docker build --quiet -t eksflow-dags-repo:kind --build-arg BASE="eksflow:$image_tag" \
  -f kind/dags-repo.Dockerfile "$BUILD_DIR/repo"
kind load docker-image --name "$CLUSTER" "eksflow:$image_tag" eksflow-emulator:kind eksflow-dags-repo:kind

say "PostgreSQL, AWS emulator and DAG repository in namespace $DEPS_NAMESPACE"
"${KUBE[@]}" apply -f kind/manifests/namespace.yaml
if ! "${KUBE[@]}" -n "$DEPS_NAMESPACE" get secret postgres >/dev/null 2>&1; then
  # Made once per cluster and never printed; the DB Secret below is built from it.
  python3 -c 'import secrets; print(secrets.token_hex(24), end="")' \
    | "${KUBE[@]}" -n "$DEPS_NAMESPACE" create secret generic postgres --from-file=password=/dev/stdin >/dev/null
fi
"${KUBE[@]}" apply -f kind/manifests/postgres.yaml -f kind/manifests/aws-emulator.yaml -f kind/manifests/dags-repo.yaml
# Same tags, new contents: restart so the pods run what was just loaded (the emulator is re-seeded below).
"${KUBE[@]}" -n "$DEPS_NAMESPACE" rollout restart deployment/aws-emulator deployment/dags-repo
for deployment in postgres aws-emulator dags-repo; do
  "${KUBE[@]}" -n "$DEPS_NAMESPACE" rollout status "deployment/$deployment" --timeout "${ROLLOUT_TIMEOUT}s"
done

say "seeding the emulator (subnets, security groups, buckets, EC2, endpoints)"
trap stop_port_forward EXIT
port_forward "$DEPS_NAMESPACE" aws-emulator 5000
"$EKSFLOW" kind seed --endpoint-url "$PF_URL" >"$BUILD_DIR/seeded-values.yaml"
stop_port_forward

say "namespace $NAMESPACE (restricted Pod Security) and its Secrets"
"$EKSFLOW" kind namespace | "${KUBE[@]}" apply -f -
# The password travels through pipes and builtins only: never on a command line, on screen or on disk.
password="$("${KUBE[@]}" -n "$DEPS_NAMESPACE" get secret postgres -o jsonpath='{.data.password}' | base64 -d)"
printf '%s' "postgresql+psycopg2://airflow:${password}@postgres.${DEPS_NAMESPACE}.svc.cluster.local:5432/airflow" \
  | "${KUBE[@]}" -n "$NAMESPACE" create secret generic "$DB_SECRET" --from-file=connection=/dev/stdin \
    --dry-run=client -o yaml \
  | "${KUBE[@]}" apply -f - >/dev/null
unset password
"${KUBE[@]}" -n "$NAMESPACE" create secret generic "$AWS_SECRET" --dry-run=client -o yaml \
  --from-literal=access-key-id=testing --from-literal=secret-access-key=testing \
  | "${KUBE[@]}" apply -f - >/dev/null

say "helm upgrade --install $RELEASE (values-kind.yaml + the seeded ids, image eksflow:$image_tag)"
helm upgrade --install "$RELEASE" helm/eksflow --kube-context "kind-$CLUSTER" --namespace "$NAMESPACE" \
  -f helm/eksflow/values-kind.yaml -f "$BUILD_DIR/seeded-values.yaml" \
  --set image.repository=eksflow --set image.tag="$image_tag" \
  --wait --rollback-on-failure --timeout 35m
helm test "$RELEASE" --kube-context "kind-$CLUSTER" --namespace "$NAMESPACE" --timeout 5m
say "eksflow is up on kind-$CLUSTER: kubectl --context kind-$CLUSTER -n $NAMESPACE get pods"
