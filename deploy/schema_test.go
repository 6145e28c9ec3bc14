package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/provcred/deploy/chart"
)

// openMaps are the object schemas that may hold keys of the operator's
// choosing: global, which Helm fills from a parent chart's globals when
// this chart is a subchart (they cannot be known here).
var openMaps = []string{"#/properties/global"}

// Every object in values.schema.json is closed (additionalProperties:
// false), so a misspelt key anywhere fails the install; the only other
// objects are maps of strings (labels, annotations, nodeSelector), whose
// keys are the operator's and whose values must be strings.
func TestSchemaIsClosedAtEveryLevel(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "helm", "credentialing", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var objects, maps []string
	for _, p := range schemaProblems(root, "#", &objects, &maps) {
		t.Error(p)
	}
	// The walk reached the nested levels (a walk that stopped early passes
	// nothing): affinity terms, tolerations, env sources, selector terms.
	for _, want := range []string{"#/$defs/affinity/properties/nodeAffinity",
		"#/$defs/podAffinity/properties/preferredDuringSchedulingIgnoredDuringExecution/items",
		"#/$defs/toleration", "#/$defs/envVarSource/properties/secretKeyRef", "#/$defs/labelSelectorRequirement",
		"#/properties/networkPolicy", "#/properties/gateway/properties/extraEnv/items"} {
		if !slices.Contains(objects, want) {
			t.Errorf("the walk did not reach %s", want)
		}
	}
	if len(objects) < 50 || len(maps) < 10 {
		t.Errorf("walked %d closed objects and %d string maps; the schema has more", len(objects), len(maps))
	}
}

// schemaProblems walks every subschema under node (properties, items,
// definitions, combinators) and lists the object schemas that are open.
func schemaProblems(node any, path string, objects, maps *[]string) []string {
	n, ok := node.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	isObject := n["type"] == "object" || n["properties"] != nil
	if ts, ok := n["type"].([]any); ok && slices.Contains(ts, any("object")) {
		isObject = true
	}
	if isObject && !slices.Contains(openMaps, path) {
		switch ap := n["additionalProperties"].(type) {
		case bool:
			if ap {
				out = append(out, path+": additionalProperties is true")
			} else {
				*objects = append(*objects, path)
			}
		case map[string]any:
			if n["properties"] != nil || ap["type"] != "string" {
				out = append(out, fmt.Sprintf("%s: a map must have no properties and string values, has %v", path, ap))
			} else {
				*maps = append(*maps, path)
			}
		default:
			out = append(out, path+": no additionalProperties: false (an object that takes any key)")
		}
	}
	var keys []string
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "properties", "$defs", "definitions", "patternProperties":
			sub, _ := n[k].(map[string]any)
			var names []string
			for name := range sub {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				out = append(out, schemaProblems(sub[name], path+"/"+k+"/"+name, objects, maps)...)
			}
		case "items", "additionalProperties", "not", "if", "then", "else":
			out = append(out, schemaProblems(n[k], path+"/"+k, objects, maps)...)
		case "anyOf", "oneOf", "allOf":
			list, _ := n[k].([]any)
			for i, sub := range list {
				out = append(out, schemaProblems(sub, fmt.Sprintf("%s/%s/%d", path, k, i), objects, maps)...)
			}
		}
	}
	return out
}

// A typo at the deepest levels fails too, and what Kubernetes takes there
// still renders.
func TestSchemaRejectsTyposInKubernetesShapes(t *testing.T) {
	t.Parallel()
	for _, set := range [][]string{
		{"gateway.affinity.nodeAffinty.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key=x"},
		{"gateway.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
			"gateway.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=zone",
			"gateway.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelectr.matchLabels.a=b"},
		{"credential.tolerations[0].key=dedicated", "credential.tolerations[0].operater=Exists"},
		{"credential.tolerations[0].effect=NoSchedul"},
		{"chat.extraEnv[0].name=TOKEN", "chat.extraEnv[0].valueFrom.secretKeyRef.nmae=s", "chat.extraEnv[0].valueFrom.secretKeyRef.key=k"},
		{"chat.extraEnv[0].name=TOKEN", "chat.extraEnv[0].valueFrom.secretKeyRef.key=k", "chat.extraEnv[0].valueFrom.configMapKeyRef.key=k"},
		{"networkPolicy.postgres.to[0].podSelector.matchExpressions[0].key=app",
			"networkPolicy.postgres.to[0].podSelector.matchExpressions[0].operater=In"},
	} {
		_, err := chart.Template(helm(t), deployDir(t), chart.Options{Release: release, Namespace: namespace, Set: set})
		if err == nil {
			t.Errorf("--set %v rendered; want a schema error", set)
		}
	}

	r := render(t, nil,
		"stats.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
		"stats.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=In",
		"stats.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]=reports",
		"stats.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=100",
		"stats.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname",
		"stats.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchLabels.app=stats",
		"stats.tolerations[0].key=dedicated", "stats.tolerations[0].operator=Equal", "stats.tolerations[0].value=reports",
		"stats.tolerations[0].effect=NoSchedule",
		"stats.extraEnv[0].name=EXTRA_TOKEN", "stats.extraEnv[0].valueFrom.secretKeyRef.name=extra",
		"stats.extraEnv[0].valueFrom.secretKeyRef.key=token")
	var spec *appsv1.Deployment
	for _, d := range chart.OfKind[*appsv1.Deployment](r) {
		if d.Labels["app.kubernetes.io/component"] == "stats" {
			spec = d
		}
	}
	if spec == nil {
		t.Fatal("no stats Deployment")
	}
	pod := spec.Spec.Template.Spec
	if a := pod.Affinity; a == nil || a.NodeAffinity == nil || a.PodAntiAffinity == nil ||
		a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight != 100 {
		t.Errorf("affinity not rendered: %+v", pod.Affinity)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Value != "reports" {
		t.Errorf("tolerations not rendered: %+v", pod.Tolerations)
	}
	found := false
	for _, e := range pod.Containers[0].Env {
		if e.Name == "EXTRA_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "token" {
			found = true
		}
	}
	if !found {
		t.Errorf("extraEnv valueFrom not rendered: %+v", pod.Containers[0].Env)
	}
}
