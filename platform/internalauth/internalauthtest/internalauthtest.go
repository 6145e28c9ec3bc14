// Package internalauthtest holds the test helper every package that signs
// or verifies internal calls uses to build its keyring.
package internalauthtest

import (
	"testing"
	"time"

	"github.com/provcred/platform/internalauth"
)

// MaxSkew is the skew test keyrings allow (INTERNAL_AUTH_MAX_SKEW's default).
const MaxSkew = 30 * time.Second

// Keyring builds a keyring from spec ("<id>:<secret>,...", as
// INTERNAL_AUTH_KEYS), failing the test on a bad one.
func Keyring(t testing.TB, spec string) *internalauth.Keyring {
	t.Helper()
	keys, err := internalauth.ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	k, err := internalauth.NewKeyring(keys, MaxSkew)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
