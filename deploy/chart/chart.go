// Package chart renders the credentialing chart with the real helm binary
// and decodes what it renders strictly into the Kubernetes API types (and
// the prometheus-operator and KEDA types): an unknown or duplicated field
// is an error, as the API server's strict field validation would make it.
package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Name is the chart's folder under deploy/helm.
const Name = "credentialing"

// KubeVersion is the Kubernetes version templates are rendered for (the
// one `make test-k8s` runs).
const KubeVersion = "1.37.2"

// APIVersions are the CRD groups a production cluster has (prometheus-
// operator, KEDA), for `helm template --api-versions`.
var APIVersions = []string{"monitoring.coreos.com/v1", "keda.sh/v1alpha1"}

// Scheme knows every kind the chart may render.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, autoscalingv2.AddToScheme, monitoringv1.AddToScheme,
		kedav1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

var strict = serializer.NewCodecFactory(Scheme, serializer.EnableStrict).UniversalDeserializer()

// Helm finds the helm binary: $HELM, the one scripts/k8s-tools.sh builds
// (.tools/k8s/bin/helm, or $K8S_TOOLS_DIR/bin/helm), or helm on the PATH.
func Helm(repoRoot string) (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	dir := os.Getenv("K8S_TOOLS_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot, ".tools", "k8s")
	}
	if p := filepath.Join(dir, "bin", "helm"); isExec(p) {
		return p, nil
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p, nil
	}
	return "", errors.New("helm not found: run scripts/k8s-tools.sh (make test does) or set HELM")
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Options of one render.
type Options struct {
	Release   string
	Namespace string
	// ValueFiles are passed as -f, Set as --set, in order.
	ValueFiles []string
	Set        []string
}

// Rendered is what one `helm template` produced.
type Rendered struct {
	// Objects are the decoded typed objects, in render order.
	Objects []runtime.Object
	// Docs are the same documents as plain maps.
	Docs []map[string]any
	// Raw is helm's output.
	Raw []byte
}

// Template runs `helm template` on deploy/helm/<Name> and decodes every
// document strictly.
func Template(helm, deployDir string, o Options) (*Rendered, error) {
	args := []string{"template", o.Release, filepath.Join(deployDir, "helm", Name), "--namespace", o.Namespace,
		"--kube-version", KubeVersion}
	for _, v := range APIVersions {
		args = append(args, "--api-versions", v)
	}
	for _, f := range o.ValueFiles {
		args = append(args, "-f", f)
	}
	for _, s := range o.Set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	r := &Rendered{Raw: out}
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := rd.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w\n%s", gvkOf(doc), err, doc)
		}
		_ = gvk
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		r.Objects = append(r.Objects, obj)
		r.Docs = append(r.Docs, m)
	}
	return r, nil
}

func gvkOf(doc []byte) string {
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	_ = yaml.Unmarshal(doc, &m)
	return m.APIVersion + " " + m.Kind
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// Lint runs `helm lint --strict` with the value files.
func Lint(helm, deployDir string, valueFiles ...string) error {
	args := []string{"lint", "--strict", filepath.Join(deployDir, "helm", Name), "--kube-version", KubeVersion}
	for _, f := range valueFiles {
		args = append(args, "-f", f)
	}
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("helm lint: %w\n%s", err, out)
	}
	return nil
}

// OfKind returns the rendered objects of type T.
func OfKind[T runtime.Object](r *Rendered) []T {
	var out []T
	for _, o := range r.Objects {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
