// Command dashboards writes the Grafana dashboards of package dashboards
// into the chart: `go run ./cmd/dashboards` from deploy/ (GOWORK=off).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/provcred/deploy/dashboards"
)

func main() {
	out := flag.String("out", "helm/credentialing/files/dashboards", "directory to write <name>.json into")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, d := range dashboards.All() {
		b, err := dashboards.JSON(d)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
