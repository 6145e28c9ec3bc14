package auth

import (
	"strings"
	"testing"
)

const h1 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")

func TestParseKeys(t *testing.T) {
	upper := strings.ToUpper(h1)
	tests := []struct {
		name    string
		in      string
		want    []Key
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"one", "ci:admin:" + h1, []Key{{ID: "ci", Role: RoleAdmin, Hash: h1}}, ""},
		{"uppercase hash normalised", "ci:reader:" + upper, []Key{{ID: "ci", Role: RoleReader, Hash: h1}}, ""},
		{"comma list with spaces", " a:reader:" + h1 + " , b:operator:" + strings.Repeat("a", 64),
			[]Key{{ID: "a", Role: RoleReader, Hash: h1}, {ID: "b", Role: RoleOperator, Hash: strings.Repeat("a", 64)}}, ""},
		{"file with comments", "# keys\n\na:reader:" + h1 + " # laptop\n  # end\n",
			[]Key{{ID: "a", Role: RoleReader, Hash: h1}}, ""},
		{"two fields", "a:reader", nil, "id:role:sha256hex"},
		{"four fields", "a:reader:" + h1 + ":x", nil, "id:role:sha256hex"},
		{"bad role", "a:root:" + h1, nil, `unknown role "root"`},
		{"short hash", "a:reader:abc", nil, "64 hex"},
		{"non-hex hash", "a:reader:" + strings.Repeat("z", 64), nil, "not hexadecimal"},
		{"empty id", ":reader:" + h1, nil, "key id"},
		{"bad id", "a b:reader:" + h1, nil, "key id"},
		{"line number in file", "a:reader:" + h1 + "\nb:x:" + h1, nil, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in, "API_KEYS")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "API_KEYS") {
					t.Fatalf("error does not name the source: %v", err)
				}
				if strings.Contains(err.Error(), h1) {
					t.Fatalf("error leaks the hash: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("key %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCheckUnique(t *testing.T) {
	a := Key{ID: "a", Role: RoleReader, Hash: h1}
	if err := CheckUnique([]Key{a, {ID: "b", Hash: strings.Repeat("0", 64)}}); err != nil {
		t.Fatal(err)
	}
	if err := CheckUnique([]Key{a, {ID: "a", Hash: strings.Repeat("0", 64)}}); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if err := CheckUnique([]Key{a, {ID: "b", Hash: h1}}); err == nil {
		t.Fatal("duplicate secret accepted")
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"abc", "", false},
		{"Bearer a b", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := BearerToken(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q,%v want %q,%v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	secret, entry, err := Generate("ops-1", RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) != len(KeyPrefix)+43 {
		t.Fatalf("secret shape: %q", secret)
	}
	if strings.Contains(entry, secret) {
		t.Fatal("entry contains the secret")
	}
	keys, err := ParseKeys(entry, "API_KEYS")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(keys)
	k, ok := s.Lookup(secret)
	if !ok || k.ID != "ops-1" || k.Role != RoleOperator {
		t.Fatalf("lookup = %+v %v", k, ok)
	}
	if _, ok := s.Lookup(secret + "x"); ok {
		t.Fatal("a different secret matched")
	}
	if _, ok := s.Lookup(""); ok {
		t.Fatal("empty secret matched")
	}
	other, _, _ := Generate("ops-1", RoleOperator)
	if other == secret {
		t.Fatal("two keys are equal")
	}
	if _, _, err := Generate("bad id", RoleReader); err == nil {
		t.Fatal("bad id accepted")
	}
	if _, _, err := Generate("x", RoleNone); err == nil {
		t.Fatal("no role accepted")
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add("ci:admin:" + h1)
	f.Add("# c\na:reader:" + h1 + ",b:operator:" + strings.Repeat("A", 64))
	f.Add(":::\n,,,")
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := ParseKeys(in, "API_KEYS")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "API_KEYS") {
				t.Fatalf("error does not name the source: %v", err)
			}
			return
		}
		for _, k := range keys {
			if !validID(k.ID) || k.Role == RoleNone || len(k.Hash) != 64 || strings.ToLower(k.Hash) != k.Hash {
				t.Fatalf("accepted a bad key %+v from %q", k, in)
			}
		}
	})
}

// FuzzBearerToken: the Authorization header is outside input; a token is
// only ever a non-empty run without blanks taken from the header.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer pc_abc")
	f.Add("bearer   x  ")
	f.Add("Basic dXNlcg==")
	f.Add("Bearer a b")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := BearerToken(h)
		if !ok {
			if tok != "" {
				t.Fatalf("%q: refused but returned %q", h, tok)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.Contains(h, tok) {
			t.Fatalf("%q: token %q", h, tok)
		}
	})
}
