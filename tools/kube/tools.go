//go:build tools

// Package tools pins the Kubernetes programs that the real-apiserver tests run.
// scripts/kube-build.sh builds them with `go build` from this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
