package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/provcred/deploy/chart"
	"github.com/provcred/deploy/monitoring"
)

// The four services and the ones that autoscale.
var (
	services = []string{"gateway", "credential", "chat", "stats"}
	scaled   = []string{"gateway", "credential", "chat"}
)

const (
	release   = "cred"
	namespace = "credentialing"
)

// deployDir is this module's directory (tests run in it).
func deployDir(t *testing.T) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func helm(t *testing.T) string {
	t.Helper()
	h, err := chart.Helm(filepath.Dir(deployDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// production is the worked example operators start from.
func production(t *testing.T) string {
	return filepath.Join(deployDir(t), "helm", "values-production.yaml")
}

// render caches renders: several tests look at the same one.
var renders sync.Map

func render(t *testing.T, files []string, set ...string) *chart.Rendered {
	t.Helper()
	key := strings.Join(files, ",") + "|" + strings.Join(set, ",")
	if r, ok := renders.Load(key); ok {
		return r.(*chart.Rendered)
	}
	r, err := chart.Template(helm(t), deployDir(t), chart.Options{Release: release, Namespace: namespace, ValueFiles: files, Set: set})
	if err != nil {
		t.Fatal(err)
	}
	renders.Store(key, r)
	return r
}

// cases are the value sets every structural assertion runs on.
func cases(t *testing.T) map[string]*chart.Rendered {
	return map[string]*chart.Rendered{
		"default":    render(t, nil),
		"production": render(t, []string{production(t)}),
		"hpa":        render(t, nil, "autoscaling.mode=hpa"),
		"keda":       render(t, nil, "autoscaling.mode=keda"),
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	if err := chart.Lint(helm(t), deployDir(t)); err != nil {
		t.Error(err)
	}
	if err := chart.Lint(helm(t), deployDir(t), production(t)); err != nil {
		t.Error(err)
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	for _, set := range [][]string{
		{"gateway.replicsa=3"},                    // a typo
		{"extra=1"},                               // an unknown top-level key
		{"secrets.database.existingSecret="},      // the database secret is required
		{"secrets.apiKeys.existingSecret="},       // so are the API keys
		{"secrets.internalAuth.existingSecret="},  // and the internal signing keys
		{"secrets.cursor.existingSecret="},        // and the cursor key
		{"autoscaling.mode=yes"},                  // off, keda or hpa
		{"gateway.drainTimeout=soon"},             // a Go duration
		{"chat.autoscaling.llmSaturation=1.5"},    // a share
		{"podSecurityContext.runAsNonRoot=false"}, // never root
		{"networkPolicy.postgres.to[0].podSelektor.app=pg"},
	} {
		_, err := chart.Template(helm(t), deployDir(t), chart.Options{Release: release, Namespace: namespace, Set: set})
		if err == nil {
			t.Errorf("--set %v rendered; want a schema error", set)
		}
	}
}

// checkInternalAuth: every service reads the internal signing keys from
// the file of a Secret volume (read again on rotation), never from a value
// in the chart, and never runs in the insecure dev mode.
func checkInternalAuth(t *testing.T, svc string, p *corev1.PodSpec) {
	t.Helper()
	c := p.Containers[0]
	var file string
	for _, e := range c.Env {
		switch e.Name {
		case "INTERNAL_AUTH_KEYS_FILE":
			file = e.Value
		case "INTERNAL_AUTH_KEYS", "INTERNAL_AUTH_INSECURE_DEV":
			t.Errorf("%s: sets %s", svc, e.Name)
		}
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if file != "" && strings.HasPrefix(file, m.MountPath+"/") {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("%s: INTERNAL_AUTH_KEYS_FILE %q is not on a read-only mount", svc, file)
	}
	for _, v := range p.Volumes {
		if v.Name != mount.Name {
			continue
		}
		if v.Secret == nil || v.Secret.SecretName != "credentialing-internal-auth" || len(v.Secret.Items) != 1 ||
			v.Secret.Items[0].Key != "INTERNAL_AUTH_KEYS" || mount.MountPath+"/"+v.Secret.Items[0].Path != file {
			t.Errorf("%s: internal auth volume %+v", svc, v.VolumeSource)
		}
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0) {
			t.Errorf("%s: the internal keys file is readable by others", svc)
		}
		return
	}
	t.Errorf("%s: no volume %s", svc, mount.Name)
}

func deployments(r *chart.Rendered) map[string]*appsv1.Deployment {
	out := map[string]*appsv1.Deployment{}
	for _, d := range chart.OfKind[*appsv1.Deployment](r) {
		out[d.Labels["app.kubernetes.io/component"]] = d
	}
	return out
}

func TestEveryDeploymentIsLockedDown(t *testing.T) {
	t.Parallel()
	for name, r := range cases(t) {
		t.Run(name, func(t *testing.T) {
			deps := deployments(r)
			if len(deps) != len(services) {
				t.Fatalf("%d Deployments, want one per service", len(deps))
			}
			sas := map[string]*corev1.ServiceAccount{}
			for _, sa := range chart.OfKind[*corev1.ServiceAccount](r) {
				sas[sa.Name] = sa
			}
			for _, svc := range services {
				d := deps[svc]
				if d == nil {
					t.Errorf("no Deployment for %s", svc)
					continue
				}
				checkPod(t, svc, &d.Spec.Template.Spec, true)
				sa := sas[d.Spec.Template.Spec.ServiceAccountName]
				if sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("%s: ServiceAccount %q missing or mounts a token", svc, d.Spec.Template.Spec.ServiceAccountName)
				}
				c := d.Spec.Template.Spec.Containers[0]
				// make images names them <repository>/<service>:<appVersion>.
				if want := fmt.Sprintf("/%s:0.1.0", svc); !strings.HasSuffix(c.Image, want) {
					t.Errorf("%s: image %s, want <repository>%s", svc, c.Image, want)
				}
				if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HTTP_ADDR" && e.Value == ":8080" }) {
					t.Errorf("%s: HTTP_ADDR must bind every address in the pod", svc)
				}
				checkInternalAuth(t, svc, &d.Spec.Template.Spec)
				// preStop + drain (SHUTDOWN_TIMEOUT) fit in the grace period.
				drain := envDuration(t, c.Env, "SHUTDOWN_TIMEOUT")
				pre := c.Lifecycle.PreStop.Sleep.Seconds
				if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g < pre+drain+1 {
					t.Errorf("%s: grace %ds < preStop %ds + drain %ds", svc, g, pre, drain)
				}
				tsc := d.Spec.Template.Spec.TopologySpreadConstraints
				if len(tsc) != 2 || !matches(tsc[0].LabelSelector, d.Spec.Template.Labels) {
					t.Errorf("%s: topology spread %+v", svc, tsc)
				}
				if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
					t.Errorf("%s: a rollout must not take replicas away before new ones are ready", svc)
				}
			}
		})
	}
}

// checkPod asserts what every pod the chart makes must have.
func checkPod(t *testing.T, who string, p *corev1.PodSpec, probes bool) {
	t.Helper()
	psc := p.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v", who, psc)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token", who)
	}
	for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s: container security context %+v", who, c.Name, sc)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: memory request and limit needed", who, c.Name)
		}
		for _, e := range c.Env {
			if strings.Contains(e.Value, "://") && strings.Contains(e.Value, "@") {
				t.Errorf("%s/%s: %s looks like a URL with credentials inlined; use a Secret", who, c.Name, e.Name)
			}
			if e.Value == "" && e.ValueFrom == nil && e.Name != "LLM_BASE_URL" && e.Name != "LICENSE_VERIFY_URLS" {
				t.Errorf("%s/%s: %s empty", who, c.Name, e.Name)
			}
		}
		if !probes {
			continue
		}
		for kind, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			want := map[string]string{"liveness": "/livez", "readiness": "/readyz"}[kind]
			if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want || pr.HTTPGet.Port.String() != "http" {
				t.Errorf("%s: %s probe %+v, want GET %s", who, kind, pr, want)
			}
		}
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
			t.Errorf("%s: no preStop pause", who)
		}
	}
}

func envDuration(t *testing.T, env []corev1.EnvVar, name string) int64 {
	t.Helper()
	for _, e := range env {
		if e.Name == name {
			var d metav1.Duration
			if err := d.UnmarshalJSON([]byte(`"` + e.Value + `"`)); err != nil {
				t.Fatalf("%s=%q: %v", name, e.Value, err)
			}
			return int64(d.Seconds())
		}
	}
	t.Fatalf("%s not set", name)
	return 0
}

func matches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(klabels.Set(l))
}

// selects returns the components whose pod labels sel matches.
func selects(sel *metav1.LabelSelector, deps map[string]*appsv1.Deployment) []string {
	var out []string
	for _, svc := range services {
		if matches(sel, deps[svc].Spec.Template.Labels) {
			out = append(out, svc)
		}
	}
	return out
}

func TestEveryDeploymentHasItsServicePDBAndMonitor(t *testing.T) {
	t.Parallel()
	for name, r := range cases(t) {
		t.Run(name, func(t *testing.T) {
			deps := deployments(r)
			pdbs := map[string]int{}
			for _, p := range chart.OfKind[*policyv1.PodDisruptionBudget](r) {
				for _, s := range selects(p.Spec.Selector, deps) {
					pdbs[s]++
				}
				if sel := selects(p.Spec.Selector, deps); len(sel) != 1 {
					t.Errorf("PDB %s selects %v, want one service", p.Name, sel)
				}
			}
			svcOf := map[string]*corev1.Service{}
			for _, s := range chart.OfKind[*corev1.Service](r) {
				sel := selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, deps)
				if len(sel) != 1 {
					t.Errorf("Service %s selects %v", s.Name, sel)
					continue
				}
				svcOf[sel[0]] = s
			}
			monitored := map[string]bool{}
			for _, sm := range chart.OfKind[*monitoringv1.ServiceMonitor](r) {
				for svc, s := range svcOf {
					if matches(&sm.Spec.Selector, s.Labels) {
						monitored[svc] = true
						ep := sm.Spec.Endpoints[0]
						if ep.Port != "http" || ep.Path != "/metrics" || !ep.HonorLabels {
							t.Errorf("ServiceMonitor %s endpoint %+v", sm.Name, ep)
						}
					}
				}
			}
			for _, svc := range services {
				if pdbs[svc] != 1 || svcOf[svc] == nil || !monitored[svc] {
					t.Errorf("%s: %d PDBs, Service %v, monitored %v", svc, pdbs[svc], svcOf[svc] != nil, monitored[svc])
				}
			}
			if secrets := chart.OfKind[*corev1.Secret](r); len(secrets) > 0 {
				t.Errorf("the chart renders a Secret (%s): secrets are referenced by name only", secrets[0].Name)
			}
		})
	}
}

// netPeer is a pod that wants to connect somewhere.
type netPeer struct {
	labels, nsLabels map[string]string
}

// allows reports whether rules (ingress from or egress to) admit peer on port.
func peerMatches(peers []networkingv1.NetworkPolicyPeer, p netPeer, sameNamespace bool) bool {
	if len(peers) == 0 {
		return true
	}
	for _, pe := range peers {
		if pe.IPBlock != nil {
			continue
		}
		nsOK := pe.NamespaceSelector == nil && sameNamespace
		if pe.NamespaceSelector != nil {
			s, _ := metav1.LabelSelectorAsSelector(pe.NamespaceSelector)
			nsOK = s.Matches(klabels.Set(p.nsLabels))
		}
		podOK := pe.PodSelector == nil
		if pe.PodSelector != nil {
			s, _ := metav1.LabelSelectorAsSelector(pe.PodSelector)
			podOK = s.Matches(klabels.Set(p.labels))
		}
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func portAllowed(ports []networkingv1.NetworkPolicyPort, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port != nil && p.Port.IntValue() == port {
			return true
		}
	}
	return false
}

func policyFor(t *testing.T, r *chart.Rendered, labels map[string]string) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, np := range chart.OfKind[*networkingv1.NetworkPolicy](r) {
		if matches(&np.Spec.PodSelector, labels) {
			out = append(out, np)
		}
	}
	return out
}

// admitted: does some policy on the destination admit the peer in, and some
// policy on the source let it out?
func admitted(t *testing.T, r *chart.Rendered, from netPeer, fromOurs bool, to map[string]string) bool {
	in := false
	for _, np := range policyFor(t, r, to) {
		for _, rule := range np.Spec.Ingress {
			if peerMatches(rule.From, from, fromOurs) && portAllowed(rule.Ports, 8080) {
				in = true
			}
		}
	}
	if !fromOurs {
		return in
	}
	out := false
	for _, np := range policyFor(t, r, from.labels) {
		for _, rule := range np.Spec.Egress {
			if peerMatches(rule.To, netPeer{labels: to, nsLabels: map[string]string{"kubernetes.io/metadata.name": namespace}}, true) &&
				portAllowed(rule.Ports, 8080) {
				out = true
			}
		}
	}
	return in && out
}

func TestNetworkPoliciesSelectWhatTheyClaim(t *testing.T) {
	t.Parallel()
	ours := map[string]string{"kubernetes.io/metadata.name": namespace}
	ingress := netPeer{labels: map[string]string{"app.kubernetes.io/name": "ingress-nginx"},
		nsLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}}
	prom := netPeer{labels: map[string]string{"app.kubernetes.io/name": "prometheus"},
		nsLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}
	stranger := netPeer{labels: map[string]string{"app": "other"}, nsLabels: ours}
	// Who may open a connection to whom (port 8080).
	want := map[[2]string]bool{
		{"gateway", "credential"}: true, {"gateway", "chat"}: true, {"gateway", "stats"}: true,
		{"chat", "credential"}: true, {"chat", "stats"}: true,
	}
	for name, r := range cases(t) {
		t.Run(name, func(t *testing.T) {
			deps := deployments(r)
			for _, np := range chart.OfKind[*networkingv1.NetworkPolicy](r) {
				if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) ||
					!slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
					t.Errorf("%s: must restrict both directions", np.Name)
				}
				if sel := selects(&np.Spec.PodSelector, deps); len(sel) > 1 {
					t.Errorf("%s selects %v", np.Name, sel)
				}
			}
			for _, to := range services {
				toLabels := deps[to].Spec.Template.Labels
				if len(policyFor(t, r, toLabels)) != 1 {
					t.Errorf("%s: %d NetworkPolicies, want 1", to, len(policyFor(t, r, toLabels)))
				}
				for _, from := range services {
					got := admitted(t, r, netPeer{labels: deps[from].Spec.Template.Labels, nsLabels: ours}, true, toLabels)
					if got != want[[2]string{from, to}] {
						t.Errorf("%s → %s allowed %v, want %v", from, to, got, want[[2]string{from, to}])
					}
				}
				if got := admitted(t, r, ingress, false, toLabels); got != (to == "gateway") {
					t.Errorf("ingress controller → %s allowed %v", to, got)
				}
				if !admitted(t, r, prom, false, toLabels) {
					t.Errorf("Prometheus cannot scrape %s", to)
				}
				if admitted(t, r, stranger, false, toLabels) {
					t.Errorf("another pod of the namespace reaches %s", to)
				}
			}
			// Egress: DNS for all, PostgreSQL for the services with a schema,
			// Redis for the gateway only, remote sources (443) for credential
			// and chat only.
			for svc, ports := range map[string]struct{ need, never []int }{
				"gateway":    {need: []int{53, 6379}, never: []int{5432, 443}},
				"credential": {need: []int{53, 5432, 443}, never: []int{6379}},
				"chat":       {need: []int{53, 5432, 443}, never: []int{6379}},
				"stats":      {need: []int{53, 5432}, never: []int{443, 6379}},
			} {
				var have []int
				for _, rule := range policyFor(t, r, deps[svc].Spec.Template.Labels)[0].Spec.Egress {
					if len(rule.To) == 0 || len(rule.Ports) == 0 {
						t.Errorf("%s: an egress rule open to anything: %+v", svc, rule)
					}
					for _, p := range rule.Ports {
						have = append(have, p.Port.IntValue())
					}
				}
				for _, p := range ports.need {
					if !slices.Contains(have, p) {
						t.Errorf("%s: no egress to port %d (has %v)", svc, p, have)
					}
				}
				for _, p := range ports.never {
					if slices.Contains(have, p) {
						t.Errorf("%s: egress to port %d", svc, p)
					}
				}
			}
		})
	}
}

func TestMigrationJobIsAHook(t *testing.T) {
	t.Parallel()
	for name, r := range cases(t) {
		t.Run(name, func(t *testing.T) {
			jobs := chart.OfKind[*batchv1.Job](r)
			if len(jobs) != 1 {
				t.Fatalf("%d Jobs, want the migration Job", len(jobs))
			}
			j := jobs[0]
			if j.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || !strings.Contains(j.Annotations["helm.sh/hook-delete-policy"], "before-hook-creation") {
				t.Errorf("job annotations %v", j.Annotations)
			}
			p := j.Spec.Template.Spec
			checkPod(t, "migrate", &p, false)
			var ran []string
			for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
				if !slices.Equal(c.Args, []string{"migrate"}) {
					t.Errorf("%s args %v", c.Name, c.Args)
				}
				ran = append(ran, c.Image[strings.LastIndex(c.Image, "/")+1:strings.LastIndex(c.Image, ":")])
			}
			// The credential schema first (stats reads it), then chat's.
			if !slices.Equal(ran, []string{"credential", "chat"}) || p.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("migrations run %v (restart %s)", ran, p.RestartPolicy)
			}
		})
	}
}

func TestSecretsAreReferencedByName(t *testing.T) {
	t.Parallel()
	r := render(t, []string{production(t)})
	refs := map[string]map[string]bool{}
	for _, d := range chart.OfKind[*appsv1.Deployment](r) {
		svc := d.Labels["app.kubernetes.io/component"]
		refs[svc] = map[string]bool{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				refs[svc][e.Name+"<-"+e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
	}
	want := map[string][]string{
		"gateway":    {"REDIS_URL<-credentialing-redis"},
		"credential": {"DATABASE_URL<-credentialing-database", "CURSOR_SECRET<-credentialing-cursor"},
		"chat":       {"DATABASE_URL<-credentialing-database", "CURSOR_SECRET<-credentialing-cursor", "LLM_API_KEY<-credentialing-llm"},
		"stats":      {"DATABASE_URL<-credentialing-database", "CURSOR_SECRET<-credentialing-cursor", "STATS_DATABASE_URL<-credentialing-database"},
	}
	for svc, ws := range want {
		for _, w := range ws {
			if !refs[svc][w] {
				t.Errorf("%s: no %s (has %v)", svc, w, refs[svc])
			}
		}
		if len(refs[svc]) != len(ws) {
			t.Errorf("%s reads secrets %v, want %v", svc, refs[svc], ws)
		}
	}
	// The API keys are a mounted file, not an environment variable, so a
	// Secret update reaches the gateway without a restart.
	for _, d := range chart.OfKind[*appsv1.Deployment](r) {
		svc := d.Labels["app.kubernetes.io/component"]
		spec := d.Spec.Template.Spec
		mounted := ""
		for _, v := range spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "credentialing-api-keys" {
				mounted = v.Name
			}
		}
		file := ""
		for _, e := range spec.Containers[0].Env {
			if e.Name == "API_KEYS_FILE" {
				file = e.Value
			}
		}
		if svc != "gateway" {
			if mounted != "" || file != "" {
				t.Errorf("%s mounts the API keys (%q, %q)", svc, mounted, file)
			}
			continue
		}
		dir := ""
		for _, m := range spec.Containers[0].VolumeMounts {
			if m.Name == mounted && m.ReadOnly {
				dir = m.MountPath
			}
		}
		if mounted == "" || dir == "" || file != dir+"/keys" {
			t.Errorf("gateway: API keys volume %q mounted at %q, API_KEYS_FILE %q", mounted, dir, file)
		}
	}
}

func TestIngressServesOnlyTheAPI(t *testing.T) {
	t.Parallel()
	for name, r := range cases(t) {
		ings := chart.OfKind[*networkingv1.Ingress](r)
		if len(ings) != 1 {
			t.Fatalf("%s: %d Ingresses", name, len(ings))
		}
		for _, p := range ings[0].Spec.Rules[0].HTTP.Paths {
			if p.Backend.Service.Name != release+"-credentialing-gateway" {
				t.Errorf("%s: %s goes to %s", name, p.Path, p.Backend.Service.Name)
			}
			for _, private := range []string{"/metrics", "/livez", "/readyz"} {
				if strings.HasPrefix(private, p.Path) {
					t.Errorf("%s: path %s exposes %s", name, p.Path, private)
				}
			}
		}
	}
}

func TestKEDAScaledObjects(t *testing.T) {
	t.Parallel()
	r := render(t, nil, "autoscaling.mode=keda")
	if hpas := chart.OfKind[*autoscalingv2.HorizontalPodAutoscaler](r); len(hpas) != 0 {
		t.Errorf("keda mode renders %d HPAs", len(hpas))
	}
	deps := deployments(r)
	sos := chart.OfKind[*kedav1alpha1.ScaledObject](r)
	if len(sos) != len(scaled) {
		t.Fatalf("%d ScaledObjects, want %d", len(sos), len(scaled))
	}
	for _, so := range sos {
		svc := so.Labels["app.kubernetes.io/component"]
		if deps[svc] == nil || so.Spec.ScaleTargetRef.Name != deps[svc].Name || deps[svc].Spec.Replicas != nil {
			t.Errorf("%s: targets %q; the Deployment must leave replicas to the scaler", so.Name, so.Spec.ScaleTargetRef.Name)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 || so.Spec.Fallback == nil || so.Spec.Fallback.Replicas < 1 {
			t.Errorf("%s: may scale to zero or has no fallback: min %v fallback %+v", so.Name, so.Spec.MinReplicaCount, so.Spec.Fallback)
		}
		b := so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior
		if b == nil || *b.ScaleDown.StabilizationWindowSeconds < 60 || b.ScaleUp.StabilizationWindowSeconds == nil {
			t.Errorf("%s: no stabilization window: %+v", so.Name, b)
		}
		if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "prometheus" || so.Spec.Triggers[0].Metadata["ignoreNullValues"] != "false" {
			t.Errorf("%s: triggers %+v", so.Name, so.Spec.Triggers)
		}
	}
	// The limits the ReplicasAtMaximum alert compares with.
	rule := chart.OfKind[*monitoringv1.PrometheusRule](r)[0]
	n := 0
	for _, g := range rule.Spec.Groups {
		for _, rr := range g.Rules {
			if rr.Record == "credentialing:autoscaling_max_replicas" {
				n++
			}
		}
	}
	if n != len(scaled) {
		t.Errorf("%d max-replica recording rules, want %d", n, len(scaled))
	}
}

func TestHPAsMatchTheAdapterRules(t *testing.T) {
	t.Parallel()
	hpa := render(t, nil, "autoscaling.mode=hpa")
	keda := render(t, nil, "autoscaling.mode=keda")
	rules, err := monitoring.AdapterRules(deployDir(t))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]monitoring.AdapterRule{}
	for _, r := range rules {
		byName[r.Name.As] = r
		if _, err := monitoring.Parse(r.SeriesQuery); err != nil {
			t.Errorf("%s seriesQuery: %v", r.Name.As, err)
		}
	}
	kedaQuery := map[string]string{}
	for _, so := range chart.OfKind[*kedav1alpha1.ScaledObject](keda) {
		kedaQuery[so.Labels["app.kubernetes.io/component"]] = so.Spec.Triggers[0].Metadata["query"]
	}
	hpas := chart.OfKind[*autoscalingv2.HorizontalPodAutoscaler](hpa)
	if len(hpas) != len(scaled) || len(rules) != len(scaled) {
		t.Fatalf("%d HPAs and %d adapter rules, want %d", len(hpas), len(rules), len(scaled))
	}
	for _, h := range hpas {
		svc := h.Labels["app.kubernetes.io/component"]
		m := h.Spec.Metrics[0].External
		rule, ok := byName[m.Metric.Name]
		if !ok {
			t.Errorf("%s: external metric %s has no adapter rule", h.Name, m.Metric.Name)
			continue
		}
		// The HPA and KEDA act on the same number.
		if q := monitoring.AdapterQuery(rule, namespace); q != kedaQuery[svc] {
			t.Errorf("%s: adapter query\n %s\nKEDA query\n %s", svc, q, kedaQuery[svc])
		}
		if m.Metric.Selector.MatchLabels["namespace"] != namespace {
			t.Errorf("%s: selector %v", h.Name, m.Metric.Selector)
		}
		if h.Spec.Behavior == nil || *h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds < 60 || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 {
			t.Errorf("%s: behavior %+v min %v", h.Name, h.Spec.Behavior, h.Spec.MinReplicas)
		}
	}
}

func TestPrometheusRuleWrapsTheRuleFiles(t *testing.T) {
	t.Parallel()
	files, err := monitoring.RuleFiles(filepath.Join(deployDir(t), monitoring.RulesDir))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				want = append(want, r.Alert+r.Record+"="+r.Expr)
			}
		}
	}
	r := render(t, nil)
	var got []string
	for _, g := range chart.OfKind[*monitoringv1.PrometheusRule](r)[0].Spec.Groups {
		for _, rr := range g.Rules {
			got = append(got, rr.Alert+rr.Record+"="+rr.Expr.String())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("PrometheusRule holds\n%v\nrule files hold\n%v", got, want)
	}
}

func TestDashboardConfigMaps(t *testing.T) {
	t.Parallel()
	r := render(t, nil)
	n := 0
	for _, cm := range chart.OfKind[*corev1.ConfigMap](r) {
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		for key, js := range cm.Data {
			n++
			var d map[string]any
			if err := yaml.Unmarshal([]byte(js), &d); err != nil || d["uid"] == nil || d["panels"] == nil {
				t.Errorf("%s/%s: not a dashboard: %v", cm.Name, key, err)
			}
		}
	}
	if n != 5 {
		t.Errorf("%d dashboards shipped, want 5 (overview and one per service)", n)
	}
}
