#!/usr/bin/env bash
# End-to-end test on a kind cluster: otoroshi-xds (2 replicas) + Envoy gateway + echo backend.
# Needs docker, kind, kubectl, curl, openssl. NOT RUN on the development machine (no Docker there):
# see e2e/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-oxds-e2e}
IMAGE=otoroshi-xds:0.1.0
NS=otoroshi-xds
KEEP=${KEEP:-0}
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

for bin in docker kind kubectl curl openssl; do command -v "$bin" >/dev/null || fail "$bin is required"; done
[ -f manifests/envoy/gateway.yaml ] || fail "manifests/envoy/gateway.yaml (the Envoy bootstrap) is missing"

cleanup() {
  [ -n "${PF_PID:-}" ] && kill "$PF_PID" 2>/dev/null || true
  [ "$KEEP" = 1 ] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s

step "image $IMAGE"
docker build -f e2e/Dockerfile -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "CRDs, then otoroshi-xds"
kubectl apply -k manifests/crds
kubectl wait --for=condition=Established crd --all --timeout=60s
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" get secret otoroshi-xds-seed >/dev/null 2>&1 || \
  kubectl -n "$NS" create secret generic otoroshi-xds-seed --from-literal=secret-seed="$(openssl rand -hex 32)"
kubectl apply -k manifests/
kubectl -n "$NS" rollout status deploy/otoroshi-xds --timeout=180s
kubectl -n "$NS" rollout status deploy/otoroshi-xds-redis --timeout=120s

step "leader election: exactly one holder"
holder=""
for i in $(seq 1 30); do
  holder=$(kubectl -n "$NS" get lease otoroshi-xds-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  [ -n "$holder" ] && break; sleep 2
done
[ -n "$holder" ] || fail "no lease holder"
echo "leader: $holder"

step "Envoy gateway"
kubectl kustomize --load-restrictor LoadRestrictionsNone manifests/envoy-gateway/ | kubectl apply -f -
kubectl -n "$NS" rollout status deploy/envoy-gateway --timeout=180s

step "backend and CRs"
kubectl apply -f e2e/backend.yaml
kubectl -n e2e rollout status deploy/echo --timeout=120s
kubectl apply -f e2e/crs.yaml

step "statuses"
for i in $(seq 1 30); do
  st=$(kubectl -n e2e get service-descriptor echo -o jsonpath='{.status.conditions[0].type}' 2>/dev/null || true)
  [ "$st" = Accepted ] && break; sleep 2
done
[ "$st" = Accepted ] || fail "ServiceDescriptor e2e/echo not Accepted (got '$st')"

step "exported apikey secret"
for i in $(seq 1 30); do kubectl -n e2e get secret e2e-key-secret >/dev/null 2>&1 && break; sleep 2; done
CID=$(kubectl -n e2e get secret e2e-key-secret -o jsonpath='{.data.clientId}' | base64 -d)
CSECRET=$(kubectl -n e2e get secret e2e-key-secret -o jsonpath='{.data.clientSecret}' | base64 -d)
[ -n "$CID" ] && [ -n "$CSECRET" ] || fail "apikey secret incomplete"

kubectl -n "$NS" port-forward svc/envoy-gateway 18080:80 18443:443 >/dev/null 2>&1 &
PF_PID=$!
sleep 3
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
H=(-H "Host: echo.e2e.oto.tools")

step "apikey: none → 400, wrong → 401, right → 200, over quota → 429"
for i in $(seq 1 30); do c=$(code "${H[@]}" http://127.0.0.1:18080/); [ "$c" != 404 ] && break; sleep 2; done
[ "$(code "${H[@]}" http://127.0.0.1:18080/)" = 400 ] || fail "no apikey should be 400"
[ "$(code "${H[@]}" -H "Otoroshi-Client-Id: $CID" -H "Otoroshi-Client-Secret: wrong" http://127.0.0.1:18080/)" = 401 ] || fail "wrong secret should be 401"
[ "$(code "${H[@]}" -u "$CID:$CSECRET" http://127.0.0.1:18080/)" = 200 ] || fail "valid apikey should be 200"
got429=0
for i in $(seq 1 40); do [ "$(code "${H[@]}" -u "$CID:$CSECRET" http://127.0.0.1:18080/)" = 429 ] && { got429=1; break; }; done
[ "$got429" = 1 ] || fail "throttlingQuota 1 (10 calls per 10 s window) never answered 429"

step "mTLS: a Certificate issued by our CA, exported, used as client certificate"
kubectl apply -f - <<YAML
apiVersion: proxy.otoroshi.io/v1alpha1
kind: Certificate
metadata: { name: e2e-client, namespace: e2e }
spec:
  client: true
  exportSecret: true
  secretName: e2e-client-tls
  csr: { hosts: [e2e-client], subject: "CN=e2e-client" }
YAML
for i in $(seq 1 30); do kubectl -n e2e get secret e2e-client-tls >/dev/null 2>&1 && break; sleep 2; done
kubectl -n e2e get secret e2e-client-tls >/dev/null 2>&1 || fail "Certificate secret not exported"
tmp=$(mktemp -d)
for k in tls.crt tls.key ca.crt; do kubectl -n e2e get secret e2e-client-tls -o jsonpath="{.data.${k//./\\.}}" | base64 -d > "$tmp/$k"; done
c=$(code --resolve echo.e2e.oto.tools:18443:127.0.0.1 --cacert "$tmp/ca.crt" --cert "$tmp/tls.crt" --key "$tmp/tls.key" -u "$CID:$CSECRET" https://echo.e2e.oto.tools:18443/ || true)
[ "$c" = 200 ] || [ "$c" = 429 ] || fail "mTLS request answered $c"

step "CRD update: a new host is routed, the old one is gone"
kubectl -n e2e patch service-descriptor echo --type merge -p '{"spec":{"hosts":["echo2.e2e.oto.tools"]}}'
for i in $(seq 1 30); do c=$(code -H "Host: echo2.e2e.oto.tools" -u "$CID:$CSECRET" http://127.0.0.1:18080/); [ "$c" = 200 ] || [ "$c" = 429 ] && break; sleep 2; done
[ "$c" = 200 ] || [ "$c" = 429 ] || fail "new host not routed ($c)"
[ "$(code "${H[@]}" http://127.0.0.1:18080/)" = 404 ] || fail "old host still routed"

step "invalid CR → Invalid condition, the rest keeps working"
kubectl apply -f - <<YAML
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: { name: broken, namespace: e2e }
spec: { hosts: [broken.e2e.oto.tools], targets: [{ url: "not a url" }] }
YAML
for i in $(seq 1 30); do st=$(kubectl -n e2e get service-descriptor broken -o jsonpath='{.status.conditions[0].type}' 2>/dev/null || true); [ "$st" = Invalid ] && break; sleep 2; done
[ "$st" = Invalid ] || fail "broken descriptor not marked Invalid"

step "leader failover"
kubectl -n "$NS" delete pod "$holder" --wait=false
for i in $(seq 1 30); do h=$(kubectl -n "$NS" get lease otoroshi-xds-leader -o jsonpath='{.spec.holderIdentity}'); [ -n "$h" ] && [ "$h" != "$holder" ] && break; sleep 2; done
[ "$h" != "$holder" ] || fail "no failover"

echo "e2e: all checks passed"
