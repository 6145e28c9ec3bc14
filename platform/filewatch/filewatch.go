// Package filewatch re-reads a settings file that can change under a
// running process: a Kubernetes Secret mounted as a file is swapped
// atomically (a symlink) when the Secret changes, and inotify does not see
// through that reliably, so the file is polled.
package filewatch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"
)

// Poll reads path every interval until ctx ends and calls apply with its
// content whenever that differs from the last content seen (at first,
// last: what the process read at start). A read error, or an error from
// apply, goes to fail and the settings in force stay; content that failed
// to apply is remembered, so a bad file is reported once, not every
// interval, while an unreadable one is reported until it is readable.
func Poll(ctx context.Context, path string, interval time.Duration, last []byte, apply func([]byte) error, fail func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fail(fmt.Errorf("read %s: %w", path, err))
			continue
		}
		if bytes.Equal(b, last) {
			continue
		}
		last = b
		if err := apply(b); err != nil {
			fail(err)
		}
	}
}
