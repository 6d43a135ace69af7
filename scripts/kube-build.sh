#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl from the k8s.io/kubernetes Go module
# pinned in tools/kube/go.mod, once, into a cache outside the checkout (keyed by version), so a
# fresh clone on the same machine reuses it. Prints the bin directory on stdout.
#   OXDS_KUBE_CACHE  cache directory (default: ~/.cache/otoroshi-xds/kube-<version>)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mod="$here/tools/kube"
version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$mod/go.mod")"
[ -n "$version" ] || { echo "kube-build: no 'require k8s.io/kubernetes vX.Y.Z' line in $mod/go.mod" >&2; exit 2; }
cache="${OXDS_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otoroshi-xds/kube-$version}"
bin="$cache/bin"
programs=(kube-apiserver kube-controller-manager kubectl)
complete=1
for p in "${programs[@]}"; do [ -x "$bin/$p" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$bin"; exit 0
fi
command -v go >/dev/null 2>&1 || { echo "kube-build: Go is not installed (needs Go >= $(awk '$1=="go"{print $2}' "$mod/go.mod")); install Go to build the real Kubernetes API server" >&2; exit 3; }
mkdir -p "$bin"
major="${version#v}"; major="${major%%.*}"
minor="${version#v*.}"; minor="${minor%%.*}"
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
start=$(date +%s)
echo "kube-build: building ${programs[*]} $version into $bin (a cold build takes tens of minutes on 2 cores)" >&2
cd "$mod"
for p in "${programs[@]}"; do
  [ -x "$bin/$p" ] && continue
  nice -n 10 go build -trimpath -tags tools -ldflags "$ld" -o "$bin/$p.tmp" "k8s.io/kubernetes/cmd/$p" >&2
  mv "$bin/$p.tmp" "$bin/$p"
  echo "kube-build: $p built ($(( $(date +%s) - start )) s so far)" >&2
done
echo "$version" > "$cache/version"
echo "kube-build: done in $(( $(date +%s) - start )) s" >&2
echo "$bin"
