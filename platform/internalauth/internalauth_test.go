package internalauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	secretA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	secretB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func keyring(t *testing.T, spec string, now time.Time) *Keyring {
	t.Helper()
	keys, err := ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyring(keys, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	k.Now = func() time.Time { return now }
	return k
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		ids     []string
		wantErr string
	}{
		{in: "k1:" + secretA, ids: []string{"k1"}},
		{in: " k2:" + secretB + " , k1:" + secretA + "\n", ids: []string{"k2", "k1"}},
		{in: "# rotated 2026-12\nk2:" + secretB + "\n\nk1:" + secretA + "\n", ids: []string{"k2", "k1"}},
		{in: "k1:" + secretA + "==/+:x", ids: []string{"k1"}}, // base64 and colons kept in the secret
		{in: "", wantErr: "no key"},
		{in: "k1", wantErr: "want <id>:<secret>"},
		{in: "k1:short", wantErr: "at least 32"},
		{in: "k 1:" + secretA, wantErr: "key id"},
		{in: ":" + secretA, wantErr: "key id"},
		{in: "k1:" + secretA + ",k1:" + secretB, wantErr: "twice"},
		{in: "k1:" + secretA + ",k2:" + secretB + ",k3:" + secretA, wantErr: "at most 2"},
		{in: "k1:" + secretA[:20] + "\t" + secretA, wantErr: "white space"},
	}
	for _, tc := range cases {
		keys, err := ParseKeys(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), secretA) || strings.Contains(err.Error(), secretA[:20])) {
				t.Errorf("%q: the error quotes a secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tc.ids, ",") {
			t.Errorf("%q: ids %v, want %v", tc.in, ids, tc.ids)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_765_000_000, 0)
	signer := keyring(t, "k1:"+secretA, now)
	id := Identity{Actor: "key_admin", Role: "admin", RequestID: "req-1"}
	ts, sig, err := signer.Sign("DELETE", "/providers/p1?x=1", id)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := keyring(t, "k1:"+secretB, now)
	_, forgedSig, _ := otherKey.Sign("DELETE", "/providers/p1?x=1", id)
	_, unknownKid, _ := keyring(t, "k9:"+secretA, now).Sign("DELETE", "/providers/p1?x=1", id)
	stale := keyring(t, "k1:"+secretA, now.Add(-31*time.Second))
	staleTS, staleSig, _ := stale.Sign("DELETE", "/providers/p1?x=1", id)
	early := keyring(t, "k1:"+secretA, now.Add(31*time.Second))
	earlyTS, earlySig, _ := early.Sign("DELETE", "/providers/p1?x=1", id)
	edge := keyring(t, "k1:"+secretA, now.Add(-30*time.Second))
	edgeTS, edgeSig, _ := edge.Sign("DELETE", "/providers/p1?x=1", id)

	verifier := keyring(t, "k1:"+secretA, now)
	cases := []struct {
		name           string
		method, target string
		id             Identity
		ts, sig        string
		want           error
	}{
		{"valid", "DELETE", "/providers/p1?x=1", id, ts, sig, nil},
		{"30 s old is still inside the window", "DELETE", "/providers/p1?x=1", id, edgeTS, edgeSig, nil},
		{"unsigned", "DELETE", "/providers/p1?x=1", id, "", "", ErrMissing},
		{"forged with another secret", "DELETE", "/providers/p1?x=1", id, ts, forgedSig, ErrForged},
		{"unknown key id", "DELETE", "/providers/p1?x=1", id, ts, unknownKid, ErrUnknownKey},
		{"stale", "DELETE", "/providers/p1?x=1", id, staleTS, staleSig, ErrStale},
		{"from the future", "DELETE", "/providers/p1?x=1", id, earlyTS, earlySig, ErrStale},
		{"timestamp moved", "DELETE", "/providers/p1?x=1", id, "1765000001", sig, ErrForged},
		{"another method", "GET", "/providers/p1?x=1", id, ts, sig, ErrForged},
		{"another path", "DELETE", "/providers/p2?x=1", id, ts, sig, ErrForged},
		{"another query", "DELETE", "/providers/p1?x=2", id, ts, sig, ErrForged},
		{"another actor", "DELETE", "/providers/p1?x=1", Identity{Actor: "ceo", Role: "admin", RequestID: "req-1"}, ts, sig, ErrForged},
		{"another role", "DELETE", "/providers/p1?x=1", Identity{Actor: "key_admin", Role: "reader", RequestID: "req-1"}, ts, sig, ErrForged},
		{"another request id", "DELETE", "/providers/p1?x=1", Identity{Actor: "key_admin", Role: "admin", RequestID: "req-2"}, ts, sig, ErrForged},
		{"fields shifted", "DELETE", "/providers/p1?x=1", Identity{Actor: "key_admin\nadmin", Role: "", RequestID: "req-1"}, ts, sig, ErrForged},
		{"no version", "DELETE", "/providers/p1?x=1", id, ts, strings.TrimPrefix(sig, "v1,"), ErrMalformed},
		{"v2", "DELETE", "/providers/p1?x=1", id, ts, "v2" + strings.TrimPrefix(sig, "v1"), ErrMalformed},
		{"bad base64", "DELETE", "/providers/p1?x=1", id, ts, "v1,k1,!!!", ErrMalformed},
		{"short mac", "DELETE", "/providers/p1?x=1", id, ts, "v1,k1,AAAA", ErrMalformed},
		{"timestamp not a number", "DELETE", "/providers/p1?x=1", id, "soon", sig, ErrMalformed},
		{"signature without timestamp", "DELETE", "/providers/p1?x=1", id, "", sig, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verifier.Verify(tc.method, tc.target, tc.id, tc.ts, tc.sig)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRefusesLineBreaks(t *testing.T) {
	t.Parallel()
	k := keyring(t, "k1:"+secretA, time.Now())
	if _, _, err := k.Sign("GET", "/x", Identity{Actor: "a\nb"}); err == nil {
		t.Fatal("a line break in a signed field was signed")
	}
}

// TestRotation walks the documented procedure: add the new key second,
// swap the order, drop the old one. Every process accepts every other's
// calls at each step, and the old key stops working at the last.
func TestRotation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old := "old:" + secretA
	next := "new:" + secretB
	steps := []string{old, old + "," + next, next + "," + old, next}
	for i := 0; i+1 < len(steps); i++ {
		// During a rollout processes on step i and i+1 run side by side.
		a, b := keyring(t, steps[i], now), keyring(t, steps[i+1], now)
		for _, pair := range [][2]*Keyring{{a, b}, {b, a}} {
			ts, sig, _ := pair[0].Sign("GET", "/logs", Identity{Actor: "x"})
			if err := pair[1].Verify("GET", "/logs", Identity{Actor: "x"}, ts, sig); err != nil {
				t.Errorf("step %d→%d: %v", i, i+1, err)
			}
		}
	}
	oldSigner := keyring(t, old, now)
	ts, sig, _ := oldSigner.Sign("GET", "/logs", Identity{})
	if err := keyring(t, old+","+next, now).Verify("GET", "/logs", Identity{}, ts, sig); err != nil {
		t.Errorf("old key while both are configured: %v", err)
	}
	if err := keyring(t, next, now).Verify("GET", "/logs", Identity{}, ts, sig); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key after its removal: %v, want %v", err, ErrUnknownKey)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte("k1:"+secretA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		s       Settings
		nilRing bool
		wantErr string
	}{
		{name: "keys", s: Settings{Keys: "k1:" + secretA, MaxSkew: time.Second}},
		{name: "file", s: Settings{KeysFile: file, MaxSkew: time.Second}},
		{name: "nothing", s: Settings{MaxSkew: time.Second}, wantErr: "INTERNAL_AUTH_INSECURE_DEV"},
		{name: "dev", s: Settings{MaxSkew: time.Second, InsecureDev: true}, nilRing: true},
		{name: "keys win over dev", s: Settings{Keys: "k1:" + secretA, MaxSkew: time.Second, InsecureDev: true}},
		{name: "both", s: Settings{Keys: "k1:" + secretA, KeysFile: file, MaxSkew: time.Second}, wantErr: "not both"},
		{name: "missing file", s: Settings{KeysFile: filepath.Join(dir, "nope"), MaxSkew: time.Second}, wantErr: "INTERNAL_AUTH_KEYS_FILE"},
		{name: "bad keys", s: Settings{Keys: "k1:short", MaxSkew: time.Second}, wantErr: "INTERNAL_AUTH_KEYS"},
		{name: "skew 0", s: Settings{Keys: "k1:" + secretA}, wantErr: "INTERNAL_AUTH_MAX_SKEW"},
		{name: "skew 1h", s: Settings{Keys: "k1:" + secretA, MaxSkew: time.Hour}, wantErr: "INTERNAL_AUTH_MAX_SKEW"},
	}
	for _, tc := range cases {
		k, err := Load(tc.s)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case (k == nil) != tc.nilRing:
			t.Errorf("%s: keyring %v", tc.name, k)
		}
	}
}

func TestWatchReloadsTheFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("old:" + secretA)
	k, err := Load(Settings{KeysFile: file, MaxSkew: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go k.Watch(ctx, file, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	waitIDs := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Join(k.KeyIDs(), ",") != want {
			if time.Now().After(deadline) {
				t.Fatalf("key ids %v, want %s", k.KeyIDs(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write("new:" + secretB + "\nold:" + secretA)
	waitIDs("new,old")
	write("garbage") // kept: the keys in use stay
	time.Sleep(50 * time.Millisecond)
	waitIDs("new,old")
	write("new:" + secretB)
	waitIDs("new")
}

func TestTransportSigns(t *testing.T) {
	t.Parallel()
	k := keyring(t, "k1:"+secretA, time.Now())
	k.Now = time.Now
	type result struct {
		err   error
		actor string
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := Identity{Actor: r.Header.Get(HeaderActor), Role: r.Header.Get(HeaderRole), RequestID: r.Header.Get(HeaderRequestID)}
		results <- result{k.Verify(r.Method, r.RequestURI, id, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)), id.Actor}
	}))
	defer srv.Close()
	c := &http.Client{Transport: &Transport{Keyring: k, Identity: Identity{Actor: "tester", Role: "admin"}}}
	req, err := http.NewRequest("POST", srv.URL+"/providers/a%2Fb?q=x%20y&z=%41", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderActor, "ceo") // replaced, never signed as is
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := <-results; r.err != nil || r.actor != "tester" {
		t.Fatalf("verify %v, actor %q", r.err, r.actor)
	}
}

// BenchmarkSignVerify is the cost the signature adds to one call: one Sign
// at the gateway and one Verify at the service.
func BenchmarkSignVerify(b *testing.B) {
	keys, _ := ParseKeys("k1:" + secretA)
	k, _ := NewKeyring(keys, 30*time.Second)
	id := Identity{Actor: "key_admin", Role: "admin", RequestID: "0f8fad5b-d9cb-469f-a165-70867728950e"}
	target := "/providers?state=CA&limit=50&cursor=eyJpZCI6InByb3ZpZGVyXzAwMSJ9"
	b.ReportAllocs()
	for b.Loop() {
		ts, sig, err := k.Sign("GET", target, id)
		if err != nil {
			b.Fatal(err)
		}
		if err := k.Verify("GET", target, id, ts, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify: whatever headers a caller sends, Verify answers without
// panicking and accepts only what the keyring signed for that very call.
func FuzzVerify(f *testing.F) {
	k := keyring(&testing.T{}, "k1:"+secretA, time.Unix(1_765_000_000, 0))
	ts, sig, _ := k.Sign("GET", "/logs", Identity{Actor: "a"})
	f.Add("GET", "/logs", "a", "", ts, sig)
	f.Add("GET", "/logs", "ceo", "admin", ts, sig)
	f.Add("POST", "/providers", "", "", "", "v1,k1,")
	f.Add("GET", "/", "a", "b", "99999999999999999999", "v1,,AAAA")
	f.Fuzz(func(t *testing.T, method, target, actor, role, ts2, sig2 string) {
		err := k.Verify(method, target, Identity{Actor: actor, Role: role}, ts2, sig2)
		if err == nil && !(method == "GET" && target == "/logs" && actor == "a" && role == "" && ts2 == ts && sig2 == sig) {
			t.Fatalf("accepted %q %q %q %q %q %q", method, target, actor, role, ts2, sig2)
		}
	})
}

// FuzzParseKeys: no input panics, and an error never quotes a secret.
func FuzzParseKeys(f *testing.F) {
	f.Add("k1:" + secretA + ",k2:" + secretB)
	f.Add("k1:" + secretA[:31])
	f.Add("# c\nk1:" + secretA + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(s)
		if err != nil {
			for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
				// (The id is named in errors; a secret that is part of its own id is not a leak.)
				id, secret, ok := strings.Cut(strings.TrimSpace(entry), ":")
				if ok && len(secret) >= 8 && strings.Contains(err.Error(), secret) && !strings.Contains(id, secret) {
					t.Fatalf("error %q quotes a secret", err)
				}
			}
			return
		}
		if len(keys) == 0 || len(keys) > MaxKeys {
			t.Fatalf("%d keys", len(keys))
		}
	})
}
