#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback for tests and local work:
# etcd + kube-apiserver (own CA, RBAC, ServiceAccount token signing), optionally
# kube-controller-manager (garbage collector, Deployments, ReplicaSets, ServiceAccounts).
# Builds the Kubernetes programs once (scripts/kube-build.sh). Idempotent: running it again
# on the same directory restarts whatever is not running, on the same ports and data.
#
#   scripts/kube-up.sh [--controller-manager] [DIR]     (DIR default: .cache/kube in the checkout)
#   scripts/kube-down.sh [DIR]
#
# Writes DIR/kubeconfig (cluster admin, `system:masters`), DIR/ca.crt, DIR/env (ports and URL),
# logs DIR/*.log, and prints the kubeconfig path on stdout. Pods never run (no kubelet).
#   OXDS_ETCD_BIN   etcd binary (default: etcd on PATH, Debian's etcd-server)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
with_cm=0
dir=""
for a in "$@"; do
  case "$a" in
    --controller-manager) with_cm=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "kube-up: unknown option $a" >&2; exit 2 ;;
    *) dir="$a" ;;
  esac
done
dir="${dir:-$here/.cache/kube}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

bin="$("$here/scripts/kube-build.sh")"
etcd_bin="${OXDS_ETCD_BIN:-$(command -v etcd || true)}"
[ -x "$etcd_bin" ] || { echo "kube-up: etcd not found (apt-get install etcd-server, or set OXDS_ETCD_BIN)" >&2; exit 3; }

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
# Starts "$@" detached (own session, survives this script), pid in DIR/NAME.pid, log in DIR/NAME.log.
launch() {
  local name="$1"; shift
  setsid "$@" >>"$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}
wait_for() { # what, seconds, command...
  local what="$1" secs="$2"; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -gt "$end" ]; then
      echo "kube-up: $what did not become ready in ${secs}s; last log lines:" >&2
      tail -n 30 "$dir/${what}.log" >&2 || true
      exit 4
    fi
    sleep 0.5
  done
}

# --- ports (chosen once, kept across restarts) ---
if [ ! -f "$dir/env" ]; then
  {
    echo "ETCD_PORT=$(free_port)"
    echo "ETCD_PEER_PORT=$(free_port)"
    echo "APISERVER_PORT=$(free_port)"
    echo "CM_PORT=$(free_port)"
  } > "$dir/env.tmp"
  # shellcheck disable=SC1091
  . "$dir/env.tmp"
  echo "APISERVER_URL=https://127.0.0.1:$APISERVER_PORT" >> "$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
fi
# shellcheck disable=SC1091
. "$dir/env"

# --- PKI: a CA of its own, the serving cert, the admin client cert, the ServiceAccount key pair ---
pki="$dir/pki"
if [ ! -f "$pki/done" ]; then
  rm -rf "$pki"; mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=otoroshi-xds-test-kube-ca" -keyout ca.key -out ca.crt 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > serving.ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
      -keyout serving.key -out serving.csr 2>/dev/null
    openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile serving.ext -out serving.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=system:masters/CN=kube-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
    touch done
  )
  cp "$pki/ca.crt" "$dir/ca.crt"
fi

kubeconfig="$dir/kubeconfig"
cat > "$kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: oxds-test
  cluster:
    server: $APISERVER_URL
    certificate-authority: $pki/ca.crt
users:
- name: kube-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: oxds-test
  context: { cluster: oxds-test, user: kube-admin, namespace: default }
current-context: oxds-test
EOF
mv "$kubeconfig.tmp" "$kubeconfig"

# --- etcd ---
if ! alive etcd; then
  mkdir -p "$dir/etcd-data"
  launch etcd "$etcd_bin" --name oxds-test --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "oxds-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --quota-backend-bytes 2147483648
fi
wait_for etcd 60 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ---
# Audit log of ServiceAccount requests only (DIR/audit.log): tests count the 403s of the control plane.
cat > "$dir/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
EOF
if ! alive apiserver; then
  launch apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/serving.crt" --tls-private-key-file "$pki/serving.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none \
    --allow-privileged=false \
    --profiling=false \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" --audit-log-mode blocking \
    --v 1
fi
wait_for apiserver 180 curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$APISERVER_URL/readyz"

# --- kube-controller-manager (optional) ---
if [ "$with_cm" = 1 ] && ! alive controller-manager; then
  launch controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$kubeconfig" \
    --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CM_PORT" \
    --controllers garbagecollector,deployment,replicaset,serviceaccount,namespace \
    --leader-elect=false \
    --use-service-account-credentials=false \
    --concurrent-gc-syncs 5 \
    --v 1
  wait_for controller-manager 120 curl -fsSk "https://127.0.0.1:$CM_PORT/healthz"
fi
echo "$kubeconfig"
