// Package e2e holds the end-to-end tests: they build the four binaries,
// start them against a fresh PostgreSQL database, and drive the platform
// through the gateway only, as a client would. Every request and answer goes
// through the contract check (contract_test.go) against the OpenAPI document
// the gateway serves; TestDocsInBrowser drives /docs in headless Chromium.
//
// Run them with `go test -count=1 ./e2e/...` from the workspace root (they
// need PostgreSQL; TEST_DATABASE_URL overrides the local default; the
// browser test needs Chromium: `make browser`).
package e2e
