//go:build k8s

// Package k8stest installs the chart on a real control plane: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from
// k8s.io/kubernetes (scripts/k8s-tools.sh), and kwok, which plays the
// kubelet for fake nodes (pods become Running and Ready, Job pods
// complete). `make test-k8s` runs it (build tag k8s).
package k8stest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// cluster is a running control plane with fake nodes.
type cluster struct {
	t          *testing.T
	bin, dir   string
	kubeconfig string
	cfg        *rest.Config
	cs         *kubernetes.Clientset
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
}

// repoRoot is the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found")
		}
		dir = parent
	}
}

// toolsBin is where scripts/k8s-tools.sh put the binaries.
func toolsBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("K8S_TOOLS_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), ".tools", "k8s", "bin")
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "helm"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("%s missing in %s: run scripts/k8s-tools.sh (make test-k8s does)", b, bin)
		}
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// run starts a program that lives until the test ends (SIGTERM, then
// SIGKILL), and prints the tail of its log if the test failed.
func (c *cluster) run(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	log := &logBuf{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if c.t.Failed() {
			c.t.Logf("---- %s (tail) ----\n%s", name, log.tail(6000))
		}
	})
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %v", what, timeout, err)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startCluster brings the control plane up and registers three kwok nodes
// in three zones.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: toolsBin(t), dir: t.TempDir()}
	d := c.dir

	// etcd
	etcdPort, peerPort := freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	c.run("etcd", "--name=k8stest", "--data-dir="+filepath.Join(d, "etcd"), "--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL, "--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	waitFor(t, "etcd", 60*time.Second, func() error {
		resp, err := http.Get(etcdURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health %d", resp.StatusCode)
		}
		return nil
	})

	// kube-apiserver: a static admin token, a service-account signing key,
	// self-signed serving certificates in --cert-dir.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	saKey, saPub := filepath.Join(d, "sa.key"), filepath.Join(d, "sa.pub")
	writePEM(t, saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writePEM(t, saPub, "PUBLIC KEY", pub)
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	tokens := filepath.Join(d, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apiPort := freePort(t)
	c.run("kube-apiserver", "--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort), "--cert-dir="+filepath.Join(d, "certs"),
		"--endpoint-reconciler-type=none", "--service-cluster-ip-range=10.96.0.0/16",
		"--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-account-issuer=https://kubernetes.default.svc", "--enable-priority-and-fairness=false",
		"--storage-media-type=application/json", "--v=0")
	c.cfg = &rest.Config{Host: fmt.Sprintf("https://127.0.0.1:%d", apiPort), BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, "kube-apiserver", 120*time.Second, func() error {
		req, _ := http.NewRequest("GET", c.cfg.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	c.kubeconfig = filepath.Join(d, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: k8stest, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: k8stest, context: {cluster: k8stest, user: admin}}]
current-context: k8stest
`, c.cfg.Host, token)
	if err := os.WriteFile(c.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	if c.cs, err = kubernetes.NewForConfig(c.cfg); err != nil {
		t.Fatal(err)
	}
	if c.dyn, err = dynamic.NewForConfig(c.cfg); err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	c.run("kube-controller-manager", "--kubeconfig="+c.kubeconfig, "--leader-elect=false",
		"--service-account-private-key-file="+saKey, "--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", freePort(t)), "--concurrent-deployment-syncs=10",
		// What the chart's objects need, nothing that wants a cloud or volumes.
		"--controllers=deployment-controller,replicaset-controller,job-controller,namespace-controller,"+
			"garbage-collector-controller,serviceaccount-controller,disruption-controller,endpoints-controller,"+
			"endpointslice-controller,horizontal-pod-autoscaler-controller,pod-garbage-collector-controller")
	c.run("kube-scheduler", "--kubeconfig="+c.kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", freePort(t)))

	// kwok plays the kubelet of the nodes annotated kwok.x-k8s.io/node=fake,
	// with its own default stages (what kwokctl gives it).
	stages := kwokStages(t)
	c.run("kwok", "--kubeconfig="+c.kubeconfig, "--config="+stages, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.244.0.0/16", "--node-ip=10.250.0.1",
		"--server-address=127.0.0.1:"+fmt.Sprint(freePort(t)))

	ctx := context.Background()
	for i, zone := range []string{"zone-a", "zone-b", "zone-c"} {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"topology.kubernetes.io/zone": zone, "type": "kwok"}},
			Status: corev1.NodeStatus{Allocatable: capacity(), Capacity: capacity()}}
		if _, err := c.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "kwok nodes", 60*time.Second, func() error {
		nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready != 3 {
			return fmt.Errorf("%d of 3 nodes ready", ready)
		}
		return nil
	})
	// The apiserver taints every new node not-ready (TaintNodesByCondition);
	// lifting it once the node is Ready is the node lifecycle controller's
	// job, which is not run here (it would also evict on missed heartbeats),
	// so the test lifts it, as that controller would.
	nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		kept := n.Spec.Taints[:0]
		for _, taint := range n.Spec.Taints {
			if taint.Key != corev1.TaintNodeNotReady {
				kept = append(kept, taint)
			}
		}
		n.Spec.Taints = kept
		if _, err := c.cs.CoreV1().Nodes().Update(ctx, &n, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("lift the not-ready taint of %s: %v", n.Name, err)
		}
	}
	waitFor(t, "default service account", 60*time.Second, func() error {
		_, err := c.cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return c
}

func capacity() corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
}

// moduleDir is the module cache folder of mod@version (downloaded from the
// Go module proxy when missing).
func moduleDir(t *testing.T, dir, mod string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", mod, err)
	}
	var v struct{ Dir, Error string }
	if err := jsonUnmarshal(out, &v); err != nil || v.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", mod, err, v.Error)
	}
	return v.Dir
}

// kwokStages writes kwok's default node and pod stages (from its module,
// the version tools/k8s pins) into one config file.
func kwokStages(t *testing.T) string {
	t.Helper()
	tools := filepath.Join(repoRoot(t), "tools", "k8s")
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "sigs.k8s.io/kwok")
	cmd.Dir = tools
	cmd.Env = append(os.Environ(), "GOWORK=off")
	v, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := moduleDir(t, tools, "sigs.k8s.io/kwok@"+strings.TrimSpace(string(v)))
	var docs []string
	for _, f := range []string{"node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
		"pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, "kustomize", "stage", f))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	p := filepath.Join(t.TempDir(), "kwok.yaml")
	if err := os.WriteFile(p, []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
