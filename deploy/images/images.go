// Package images builds the services' OCI images without a container
// engine: each is two layers made here — a base (/etc/passwd and /etc/group
// with the non-root user 65532, CA certificates, /tmp) and the service's
// static binary — and a config whose entrypoint is the binary, run as
// 65532. There is no shell, no package manager, no base image to pull.
// Layers and configs carry fixed timestamps, so a rebuild of the same
// binaries gives the same digests.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"
)

// Services are the images built, each from github.com/provcred/<s>/cmd/<s>.
var Services = []string{"gateway", "credential", "chat", "stats"}

// UID is the user every image runs as (distroless' "nonroot").
const UID = 65532

// BinDir is where the binary lies in the image; the entrypoint is
// BinDir/<service>.
const BinDir = "/usr/local/bin"

// CACerts is the host's bundle copied into every image (Debian's
// ca-certificates), for TLS to PostgreSQL, the NPPES API and the LLM.
const CACerts = "/etc/ssl/certs/ca-certificates.crt"

// Options of a build.
type Options struct {
	// RepoRoot holds go.work; the services build in its workspace.
	RepoRoot string
	// Repository and Tag name the images <Repository>/<service>:<Tag>.
	Repository, Tag string
	// Platform, e.g. linux/amd64 (default: this machine's arch).
	Platform string
	// Created is the images' creation time (default: the Unix epoch, for
	// reproducible digests; SOURCE_DATE_EPOCH sets it in cmd/images).
	Created time.Time
}

// ChartDefaults reads the image repository (values.yaml) and tag (the
// chart's appVersion) from the chart, so the images and the chart agree.
func ChartDefaults(chartDir string) (repository, tag string, err error) {
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	for file, into := range map[string]any{"values.yaml": &values, "Chart.yaml": &meta} {
		b, err := os.ReadFile(filepath.Join(chartDir, file))
		if err != nil {
			return "", "", err
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			return "", "", fmt.Errorf("%s: %w", file, err)
		}
	}
	tag = values.Image.Tag
	if tag == "" {
		tag = meta.AppVersion
	}
	if values.Image.Repository == "" || tag == "" {
		return "", "", fmt.Errorf("chart %s: image.repository or appVersion empty", chartDir)
	}
	return values.Image.Repository, tag, nil
}

// RepoRoot is the directory holding go.work, above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.work not found above the working directory")
		}
		dir = parent
	}
}

// Ref is the image name of service.
func (o Options) Ref(service string) string {
	return fmt.Sprintf("%s/%s:%s", o.Repository, service, o.Tag)
}

// Build compiles the services' static binaries in one go invocation and
// returns an image per service.
func Build(ctx context.Context, o Options, services ...string) (map[string]v1.Image, error) {
	if o.Platform == "" {
		o.Platform = "linux/" + runtime.GOARCH
	}
	goos, goarch, ok := strings.Cut(o.Platform, "/")
	if !ok {
		return nil, fmt.Errorf("platform %q: want os/arch", o.Platform)
	}
	bin, err := os.MkdirTemp("", "images-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)
	var pkgs []string
	for _, s := range services {
		pkgs = append(pkgs, fmt.Sprintf("github.com/provcred/%s/cmd/%s", s, s))
	}
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.RepoRoot
	// The services build in the workspace (this module is run with GOWORK=off).
	cmd.Env = append(withoutEnv(os.Environ(), "GOWORK", "GOFLAGS"), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	base, err := baseLayer(o.Created)
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{}
	for _, s := range services {
		img, err := image(o, goos, goarch, s, filepath.Join(bin, s), base)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		out[s] = img
	}
	return out, nil
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		keep := true
		for _, n := range names {
			if k == n {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

func image(o Options, goos, goarch, service, binary string, base v1.Layer) (v1.Image, error) {
	b, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	app, err := layer(o.Created, []file{
		{path: "usr/", mode: 0o755, dir: true}, {path: "usr/local/", mode: 0o755, dir: true},
		{path: "usr/local/bin/", mode: 0o755, dir: true},
		{path: strings.TrimPrefix(BinDir, "/") + "/" + service, mode: 0o755, data: b},
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base, app)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = goos, goarch
	cf.Created = v1.Time{Time: o.Created}
	cf.Author = "provcred"
	cf.Config = v1.Config{
		Entrypoint:   []string{BinDir + "/" + service},
		User:         fmt.Sprintf("%d:%d", UID, UID),
		WorkingDir:   "/",
		Env:          []string{"SSL_CERT_FILE=" + CACerts, "PATH=" + BinDir},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":   service,
			"org.opencontainers.image.version": o.Tag,
			"org.opencontainers.image.vendor":  "provcred",
		},
	}
	cf.History = []v1.History{
		{Created: v1.Time{Time: o.Created}, CreatedBy: "provcred images: base (passwd, group, CA certificates, /tmp)"},
		{Created: v1.Time{Time: o.Created}, CreatedBy: "provcred images: " + BinDir + "/" + service + " (static, CGO_ENABLED=0)"},
	}
	return mutate.ConfigFile(img, cf)
}

type file struct {
	path string
	mode int64
	dir  bool
	uid  int
	data []byte
}

func baseLayer(created time.Time) (v1.Layer, error) {
	certs, err := os.ReadFile(CACerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates (apt-get install ca-certificates): %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	return layer(created, []file{
		{path: "etc/", mode: 0o755, dir: true},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/ssl/", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/", mode: 0o755, dir: true},
		{path: strings.TrimPrefix(CACerts, "/"), mode: 0o644, data: certs},
		{path: "home/", mode: 0o755, dir: true},
		{path: "home/nonroot/", mode: 0o700, dir: true, uid: UID},
		{path: "tmp/", mode: 0o1777, dir: true},
	})
}

// layer makes an uncompressed-then-gzipped tar layer with fixed times.
func layer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: created, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes img as an OCI image layout in dir (replacing it),
// naming it ref (the org.opencontainers.image.ref.name annotation).
func WriteLayout(dir, ref string, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
}
