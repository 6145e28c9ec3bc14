package images

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestImages builds every image, writes it as an OCI layout, reads it back
// and inspects its config and every file of its layers.
func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the four services")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	repo, tag, err := ChartDefaults(filepath.Join(root, "deploy", "helm", "credentialing"))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{RepoRoot: root, Repository: repo, Tag: tag, Created: time.Unix(0, 0).UTC()}
	imgs, err := Build(context.Background(), o, Services...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, s := range Services {
		t.Run(s, func(t *testing.T) {
			out := filepath.Join(dir, s)
			if err := WriteLayout(out, o.Ref(s), imgs[s]); err != nil {
				t.Fatal(err)
			}
			img := readLayout(t, out, o.Ref(s))
			inspectConfig(t, s, img, tag)
			inspectLayers(t, s, img)
			// Same inputs, same digest: the build is reproducible.
			again, err := image(o, "linux", mustArch(t, img), s, extract(t, img, BinDir+"/"+s), mustBase(t))
			if err != nil {
				t.Fatal(err)
			}
			d1, _ := img.Digest()
			d2, _ := again.Digest()
			if d1 != d2 {
				t.Errorf("rebuilt digest %s, want %s", d2, d1)
			}
		})
	}
	if repo != "ghcr.io/provcred" || tag == "" {
		t.Errorf("chart image %s:%s", repo, tag)
	}
}

func readLayout(t *testing.T, dir, ref string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != ref ||
		m.Manifests[0].MediaType != types.OCIManifestSchema1 {
		t.Fatalf("index %+v, want one OCI manifest named %s", m.Manifests, ref)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func inspectConfig(t *testing.T, s string, img v1.Image, tag string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{BinDir + "/" + s}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %v cmd %v, want the binary alone", c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if cf.OS != "linux" || c.Labels["org.opencontainers.image.version"] != tag {
		t.Errorf("os %s labels %v", cf.OS, c.Labels)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	mt, _ := img.MediaType()
	if mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s", mt)
	}
}

func inspectLayers(t *testing.T, s string, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("%d layers, want base and binary", len(layers))
	}
	files := map[string]*tar.Header{}
	content := map[string][]byte{}
	for _, l := range layers {
		mt, _ := l.MediaType()
		if mt != types.OCILayer {
			t.Errorf("layer media type %s", mt)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := "/" + strings.TrimSuffix(h.Name, "/")
			files[name] = h
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				content[name] = b
			}
			if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
				t.Errorf("link %s", name)
			}
			if h.Mode&0o6000 != 0 {
				t.Errorf("%s is setuid/setgid", name)
			}
		}
		rc.Close()
	}
	if !strings.Contains(string(content["/etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd: %q", content["/etc/passwd"])
	}
	if !strings.Contains(string(content[CACerts]), "BEGIN CERTIFICATE") {
		t.Error("no CA certificates")
	}
	if h := files["/tmp"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Error("/tmp missing or not world-writable with the sticky bit")
	}
	for name := range files {
		for _, shell := range []string{"/bin", "/sbin", "/usr/bin", "/bin/sh", "/bin/bash", "/bin/busybox"} {
			if name == shell {
				t.Errorf("image has %s", name)
			}
		}
	}
	bin := BinDir + "/" + s
	h := files[bin]
	if h == nil || h.Mode&0o111 == 0 {
		t.Fatalf("%s missing or not executable", bin)
	}
	f, err := elf.NewFile(readerAt(content[bin]))
	if err != nil {
		t.Fatalf("%s: not ELF: %v", bin, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked", bin)
		}
	}
	var regular []string
	for name, h := range files {
		if h.Typeflag == tar.TypeReg {
			regular = append(regular, name)
		}
	}
	slices.Sort(regular)
	want := []string{CACerts, "/etc/group", "/etc/passwd", bin}
	slices.Sort(want)
	if !slices.Equal(regular, want) {
		t.Errorf("files %v, want only %v", regular, want)
	}
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r)) {
		return 0, io.EOF
	}
	n := copy(p, r[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func extract(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	layers, _ := img.Layers()
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the last layer: %v", path, err)
		}
		if "/"+h.Name == path {
			out := filepath.Join(t.TempDir(), filepath.Base(path))
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(out, b, 0o755); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
}

func mustArch(t *testing.T, img v1.Image) string {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Architecture
}

func mustBase(t *testing.T) v1.Layer {
	l, err := baseLayer(time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	return l
}
