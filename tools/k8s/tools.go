//go:build tools

// Package tools pins the programs `make test-k8s` runs: a real
// kube-apiserver, kube-scheduler and kube-controller-manager built from
// k8s.io/kubernetes, etcd (go.etcd.io/etcd/server/v3, the version
// Kubernetes requires), kwok for fake nodes and pods, and helm. It is kept out
// of go.work (its dependency graph is Kubernetes', not ours); build it with
// GOWORK=off, as scripts/k8s-tools.sh does.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "helm.sh/helm/v3/cmd/helm"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
