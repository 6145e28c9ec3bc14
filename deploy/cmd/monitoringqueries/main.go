// Command monitoringqueries prints, as JSON, every PromQL expression the
// platform ships (rules, dashboards, and the KEDA triggers of the chart
// rendered for -namespace) with the metric names each reads, and the names
// expected later. The e2e suite's live Prometheus test runs it (it keeps
// Prometheus' parser out of the e2e module's dependencies).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/provcred/deploy/chart"
	"github.com/provcred/deploy/images"
	"github.com/provcred/deploy/monitoring"
)

func main() {
	ns := flag.String("namespace", "credentialing", "namespace label the queries are rendered for")
	flag.Parse()
	if err := run(*ns); err != nil {
		fmt.Fprintln(os.Stderr, "monitoringqueries:", err)
		os.Exit(1)
	}
}

func run(ns string) error {
	root, err := images.RepoRoot()
	if err != nil {
		return err
	}
	deployDir := filepath.Join(root, "deploy")
	qs, err := monitoring.All(deployDir, ns)
	if err != nil {
		return err
	}
	helm, err := chart.Helm(root)
	if err != nil {
		return err
	}
	r, err := chart.Template(helm, deployDir, chart.Options{Release: "e2e", Namespace: ns, Set: []string{"autoscaling.mode=keda"}})
	if err != nil {
		return err
	}
	auto, err := monitoring.Autoscaling(r.Docs)
	if err != nil {
		return err
	}
	out := struct {
		Queries       []monitoring.Query `json:"queries"`
		ExpectedLater []string           `json:"expected_later"`
	}{append(qs, auto...), monitoring.ExpectedLater}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
