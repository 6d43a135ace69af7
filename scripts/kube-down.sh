#!/usr/bin/env bash
# Stops what scripts/kube-up.sh started in DIR (default: .cache/kube in the checkout).
#   scripts/kube-down.sh [--only NAME] [--purge] [DIR]
#     --only NAME  stop only etcd, apiserver or controller-manager (e.g. to restart the API server)
#     --purge      also delete DIR (etcd data, PKI, kubeconfig)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
only=""; purge=0; dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift ;;
    --purge) purge=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    -*) echo "kube-down: unknown option $1" >&2; exit 2 ;;
    *) dir="$1" ;;
  esac
  shift
done
dir="${dir:-$here/.cache/kube}"
[ -d "$dir" ] || exit 0
stop() {
  local f="$dir/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
if [ -n "$only" ]; then
  stop "$only"
else
  stop controller-manager; stop apiserver; stop etcd
fi
if [ "$purge" = 1 ]; then rm -rf "$dir"; fi
