// Package deploy holds what ships the platform to Kubernetes: the Helm
// chart (helm/credentialing), its rule files and dashboards, the
// prometheus-adapter rules, and the daemonless image builder (cmd/images).
// Its tests render the chart and check what it renders. The module is kept
// out of go.work so that the Kubernetes and Prometheus libraries its tests
// use never change the services' dependency versions; `make test` runs it
// with GOWORK=off.
package deploy
