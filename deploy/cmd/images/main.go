// Command images builds every service's OCI image without a container
// engine (package images) and writes each as an OCI layout under -out
// (bin/images/<service>); with -push it also pushes them to the registry
// of -repository. `make images` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/provcred/deploy/images"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := images.RepoRoot()
	if err != nil {
		return err
	}
	repo, tag, err := images.ChartDefaults(filepath.Join(root, "deploy", "helm", "credentialing"))
	if err != nil {
		return err
	}
	out := flag.String("out", filepath.Join(root, "bin", "images"), "directory for the OCI layouts, one per service")
	flag.StringVar(&repo, "repository", repo, "image repository (default: the chart's image.repository)")
	flag.StringVar(&tag, "tag", tag, "image tag (default: the chart's appVersion)")
	platform := flag.String("platform", "", "os/arch (default: this machine's)")
	push := flag.Bool("push", false, "push each image to <repository>/<service>:<tag> (credentials from the Docker config)")
	flag.Parse()

	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		created = time.Unix(sec, 0).UTC()
	}
	o := images.Options{RepoRoot: root, Repository: repo, Tag: tag, Platform: *platform, Created: created}
	ctx := context.Background()
	imgs, err := images.Build(ctx, o, images.Services...)
	if err != nil {
		return err
	}
	for _, s := range images.Services {
		dir := filepath.Join(*out, s)
		if err := images.WriteLayout(dir, o.Ref(s), imgs[s]); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		d, _ := imgs[s].Digest()
		fmt.Printf("%s  %s  %s\n", o.Ref(s), d, dir)
		if *push {
			ref, err := name.ParseReference(o.Ref(s))
			if err != nil {
				return err
			}
			if err := remote.Write(ref, imgs[s], remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("push %s: %w", ref, err)
			}
		}
	}
	return nil
}
