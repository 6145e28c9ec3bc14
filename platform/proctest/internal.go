package proctest

import (
	"net/http"
	"sync"
	"time"

	"github.com/provcred/platform/internalauth"
)

// internalKeys is the INTERNAL_AUTH_KEYS every process a test starts gets
// (unless its env sets its own, a keys file or the dev setting): one fresh
// secret per test binary, so the processes trust one another and nothing
// else.
var internalKeys = sync.OnceValue(func() string {
	entry, err := internalauth.Generate("proctest")
	if err != nil {
		panic(err)
	}
	return entry
})

// InternalKeys is the INTERNAL_AUTH_KEYS value Start gives the processes.
func InternalKeys() string { return internalKeys() }

// Keyring signs calls as the processes Start runs expect them.
func Keyring() *internalauth.Keyring {
	keys, err := internalauth.ParseKeys(internalKeys())
	if err != nil {
		panic(err)
	}
	k, err := internalauth.NewKeyring(keys, 30*time.Second)
	if err != nil {
		panic(err)
	}
	return k
}

// SignedClient calls a service directly as the gateway would, for id: a
// test standing in for the gateway. A request id set on a request is kept.
func SignedClient(id internalauth.Identity) *http.Client {
	return &http.Client{Transport: &internalauth.Transport{Keyring: Keyring(), Identity: id}}
}

// withInternalKeys adds INTERNAL_AUTH_KEYS to env unless it configures
// internal auth itself.
func withInternalKeys(env map[string]string) []string {
	for _, k := range []string{"INTERNAL_AUTH_KEYS", "INTERNAL_AUTH_KEYS_FILE", "INTERNAL_AUTH_INSECURE_DEV"} {
		if _, ok := env[k]; ok {
			return nil
		}
	}
	return []string{"INTERNAL_AUTH_KEYS=" + internalKeys()}
}
