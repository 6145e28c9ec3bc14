// Package e2e holds the end-to-end test: it builds the four binaries,
// starts them against a fresh PostgreSQL database, and drives the platform
// through the gateway only, as a client would.
//
// Run it with `go test -count=1 ./e2e/...` from the workspace root (it needs
// PostgreSQL; TEST_DATABASE_URL overrides the local default).
package e2e
