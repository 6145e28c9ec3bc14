//go:build k8s

package k8stest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

const chartVersionTag = "0.1.0"

func deployDir(t *testing.T) string { return filepath.Join(repoRoot(t), "deploy") }

func chartDir(t *testing.T) string { return filepath.Join(deployDir(t), "helm", "credentialing") }

// helm runs the helm binary against the test cluster.
func (c *cluster) helm(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, "helm"), append(args, "--kubeconfig", c.kubeconfig)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(c.dir, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(c.dir, "helm-config"), "HELM_DATA_HOME="+filepath.Join(c.dir, "helm-data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// applyFile creates every object of a YAML file (CRDs).
func (c *cluster) applyFile(path string) {
	c.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, obj := range decodeAll(c.t, b) {
		if _, err := c.create(obj, "", false); err != nil && !apierrors.IsAlreadyExists(err) {
			c.t.Fatalf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

func decodeAll(t *testing.T, b []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := rd.Read()
		if err != nil {
			break
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func (c *cluster) resource(obj *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		c.mapper.Reset()
		if m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return nil, err
		}
	}
	if m.Scope.Name() == "namespace" {
		return c.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

// create creates obj; dryRun asks the server to validate it completely
// (admission, defaulting, strict field validation) and store nothing.
func (c *cluster) create(obj *unstructured.Unstructured, ns string, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj, ns)
	if err != nil {
		return nil, err
	}
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Create(context.Background(), obj, opts)
}

func (c *cluster) namespace(ns string) {
	c.t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	for name, data := range map[string]map[string]string{
		"credentialing-database": {"DATABASE_URL": "postgres://app:secret@pg-rw.databases:5432/credentialing?sslmode=require",
			"STATS_DATABASE_URL": "postgres://app:secret@pg-ro.databases:5432/credentialing?sslmode=require"},
		"credentialing-api-keys":      {"API_KEYS": "ops:admin:" + strings.Repeat("ab", 32)},
		"credentialing-internal-auth": {"INTERNAL_AUTH_KEYS": "k1:" + strings.Repeat("cd", 32)},
		"credentialing-redis":         {"REDIS_URL": "redis://:secret@redis.databases:6379/0"},
		"credentialing-llm":           {"LLM_API_KEY": "sk-test"},
		"credentialing-cursor":        {"CURSOR_SECRET": strings.Repeat("c", 32)},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
		if _, err := c.cs.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
	}
}

// installCRDs installs prometheus-operator's ServiceMonitor and
// PrometheusRule and KEDA's CRDs from their modules, at the versions whose
// Go types deploy/go.mod decodes the chart into.
func (c *cluster) installCRDs() {
	c.t.Helper()
	dd := deployDir(c.t)
	version := func(mod string) string {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod)
		cmd.Dir = dd
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.Output()
		if err != nil {
			c.t.Fatalf("go list -m %s: %v", mod, err)
		}
		return strings.TrimSpace(string(out))
	}
	// The operator's CRDs ship in its main module, tagged like its apis module.
	promOp := moduleDir(c.t, dd, "github.com/prometheus-operator/prometheus-operator@"+
		version("github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring"))
	for _, f := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		c.applyFile(filepath.Join(promOp, "example", "prometheus-operator-crd", f))
	}
	keda := moduleDir(c.t, dd, "github.com/kedacore/keda/v2@"+version("github.com/kedacore/keda/v2"))
	for _, f := range []string{"keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"} {
		c.applyFile(filepath.Join(keda, "config", "crd", "bases", f))
	}
	waitFor(c.t, "CRDs served", 60*time.Second, func() error {
		c.mapper.Reset()
		for _, gk := range []schema.GroupKind{{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"},
			{Group: "monitoring.coreos.com", Kind: "PrometheusRule"}, {Group: "keda.sh", Kind: "ScaledObject"}} {
			if _, err := c.mapper.RESTMapping(gk); err != nil {
				return err
			}
		}
		return nil
	})
}

// strictDryRun sends every object `helm template` renders (hooks
// included) to the API server as a dry-run create with strict field
// validation: an unknown field, a wrong type or a refused value fails.
func (c *cluster) strictDryRun(release, ns string, args ...string) int {
	c.t.Helper()
	out := c.helm(append([]string{"template", release, chartDir(c.t), "-n", ns, "--kube-version", "1.37.2",
		"--api-versions", "monitoring.coreos.com/v1", "--api-versions", "keda.sh/v1alpha1"}, args...)...)
	objs := decodeAll(c.t, []byte(out))
	for _, o := range objs {
		if _, err := c.create(o, ns, true); err != nil {
			c.t.Errorf("%s %s refused: %v", o.GetKind(), o.GetName(), err)
		}
	}
	return len(objs)
}

// jobWatch records the Jobs of ns that completed.
type jobWatch struct {
	mu        sync.Mutex
	completed map[string]int
}

func (c *cluster) watchJobs(ctx context.Context, ns string) *jobWatch {
	jw := &jobWatch{completed: map[string]int{}}
	w, err := c.cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	seen := map[string]bool{}
	go func() {
		for ev := range w.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			for _, cond := range j.Status.Conditions {
				if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue && !seen[string(j.UID)] {
					seen[string(j.UID)] = true
					jw.mu.Lock()
					jw.completed[j.Name]++
					jw.mu.Unlock()
				}
			}
		}
	}()
	return jw
}

func (jw *jobWatch) count(name string) int {
	jw.mu.Lock()
	defer jw.mu.Unlock()
	return jw.completed[name]
}

// checkRolledOut asserts every Deployment of the release runs tag on ready
// pods, and that no pod of another tag is left.
func (c *cluster) checkRolledOut(ns, release, tag string) {
	c.t.Helper()
	ctx := context.Background()
	sel := "app.kubernetes.io/instance=" + release
	// helm --wait returns once enough new pods are ready (maxUnavailable),
	// while old ones may still terminate: the rollout's end is waited for.
	waitFor(c.t, "every Deployment rolled out", 90*time.Second, func() error {
		deps, err := c.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		if len(deps.Items) != 4 {
			return fmt.Errorf("%d Deployments, want 4", len(deps.Items))
		}
		for _, d := range deps.Items {
			img := d.Spec.Template.Spec.Containers[0].Image
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			if !strings.HasSuffix(img, ":"+tag) || d.Status.ReadyReplicas != want || d.Status.UpdatedReplicas != want ||
				d.Status.Replicas != want || d.Status.ObservedGeneration != d.Generation {
				return fmt.Errorf("%s: image %s ready %d updated %d total %d of %d (generation %d/%d)", d.Name, img,
					d.Status.ReadyReplicas, d.Status.UpdatedReplicas, d.Status.Replicas, want, d.Status.ObservedGeneration, d.Generation)
			}
		}
		return nil
	})
	waitFor(c.t, "old pods gone", 90*time.Second, func() error {
		pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel + ",app.kubernetes.io/component!=migrate"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if !strings.HasSuffix(p.Spec.Containers[0].Image, ":"+tag) {
				return fmt.Errorf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
			}
			if !podReady(&p) {
				return fmt.Errorf("pod %s not ready", p.Name)
			}
			if p.Spec.NodeName == "" {
				return fmt.Errorf("pod %s not scheduled", p.Name)
			}
		}
		return nil
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// leftovers lists every namespaced object of ns labelled with the release.
func (c *cluster) leftovers(ns, release string) []string {
	c.t.Helper()
	lists, err := c.cs.Discovery().ServerPreferredNamespacedResources()
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" || strings.Contains(r.Name, "/") {
				continue
			}
			items, err := c.dyn.Resource(gv.WithResource(r.Name)).Namespace(ns).List(context.Background(),
				metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
			if err != nil {
				continue
			}
			for _, it := range items.Items {
				out = append(out, r.Name+"/"+it.GetName())
			}
		}
	}
	return out
}

func TestHelmOnARealAPIServer(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("control plane up in %s", time.Since(start).Round(time.Second))
	c.installCRDs()

	t.Run("every rendered object passes strict server validation", func(t *testing.T) {
		c.t = t
		defer func() { c.t = t }()
		c.namespace("validate")
		prod := filepath.Join(deployDir(t), "helm", "values-production.yaml")
		for name, args := range map[string][]string{
			"default": nil, "production": {"-f", prod}, "hpa": {"--set", "autoscaling.mode=hpa"}, "keda": {"--set", "autoscaling.mode=keda"},
		} {
			if n := c.strictDryRun("v-"+name, "validate", args...); n < 25 {
				t.Errorf("%s: only %d objects rendered", name, n)
			}
		}
	})

	t.Run("install, upgrade, uninstall with default values", func(t *testing.T) {
		c.t = t
		ns, rel := "credentialing", "credentialing"
		c.namespace(ns)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		jobs := c.watchJobs(ctx, ns)
		job := rel + "-migrate"

		c.helm("install", rel, chartDir(t), "-n", ns, "--wait", "--timeout", "5m")
		c.checkRolledOut(ns, rel, chartVersionTag)
		waitFor(t, "migration hook completed", 30*time.Second, func() error {
			if jobs.count(job) != 1 {
				return fmt.Errorf("migration Job completed %d times", jobs.count(job))
			}
			return nil
		})
		for _, kind := range []struct {
			gvr  schema.GroupVersionResource
			want int
		}{
			{schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}, 4},
			{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, 4},
			{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}, 4},
			{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules"}, 1},
			{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}, 1},
		} {
			l, err := c.dyn.Resource(kind.gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + rel})
			if err != nil || len(l.Items) != kind.want {
				t.Errorf("%s: %d, want %d (%v)", kind.gvr.Resource, len(l.Items), kind.want, err)
			}
		}
		// The pods spread over the three zones' nodes.
		pods, _ := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
		nodes := map[string]bool{}
		for _, p := range pods.Items {
			nodes[p.Spec.NodeName] = true
		}
		if len(pods.Items) != 2 || len(nodes) != 2 {
			t.Errorf("gateway pods on nodes %v", nodes)
		}

		before := map[string]string{}
		deps, _ := c.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		for _, d := range deps.Items {
			before[d.Name] = rsOf(t, c, ns, &d)
		}
		c.helm("upgrade", rel, chartDir(t), "-n", ns, "--reuse-values", "--set", "image.tag=0.1.1", "--wait", "--timeout", "5m")
		c.checkRolledOut(ns, rel, "0.1.1")
		deps, _ = c.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		for _, d := range deps.Items {
			if now := rsOf(t, c, ns, &d); now == before[d.Name] {
				t.Errorf("%s: still on ReplicaSet %s after the upgrade", d.Name, now)
			}
		}
		waitFor(t, "migration hook ran again", 30*time.Second, func() error {
			if jobs.count(job) != 2 {
				return fmt.Errorf("migration Job completed %d times", jobs.count(job))
			}
			return nil
		})

		c.helm("uninstall", rel, "-n", ns, "--wait", "--timeout", "3m")
		waitFor(t, "nothing left behind", 90*time.Second, func() error {
			if left := c.leftovers(ns, rel); len(left) > 0 {
				return fmt.Errorf("left behind: %v", left)
			}
			return nil
		})
	})

	t.Run("install and uninstall with production values", func(t *testing.T) {
		c.t = t
		ns, rel := "credentialing-prod", "credentialing"
		c.namespace(ns)
		prod := filepath.Join(deployDir(t), "helm", "values-production.yaml")
		c.helm("install", rel, chartDir(t), "-n", ns, "-f", prod, "--wait", "--timeout", "5m")
		c.checkRolledOut(ns, rel, chartVersionTag)
		sos, err := c.dyn.Resource(schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}).
			Namespace(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil || len(sos.Items) != 3 {
			t.Errorf("ScaledObjects: %v %v", len(sos.Items), err)
		}
		c.helm("uninstall", rel, "-n", ns, "--wait", "--timeout", "3m")
		waitFor(t, "nothing left behind", 90*time.Second, func() error {
			if left := c.leftovers(ns, rel); len(left) > 0 {
				return fmt.Errorf("left behind: %v", left)
			}
			return nil
		})
	})
}

// rsOf is the name of the ReplicaSet of d's current template.
func rsOf(t *testing.T, c *cluster, ns string, d *appsv1.Deployment) string {
	t.Helper()
	rss, err := c.cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=" + d.Labels["app.kubernetes.io/component"]})
	if err != nil {
		t.Fatal(err)
	}
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	for _, rs := range rss.Items {
		if rs.Annotations["deployment.kubernetes.io/revision"] == rev {
			return rs.Name
		}
	}
	return ""
}
