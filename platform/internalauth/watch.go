package internalauth

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"
)

// Watch reads path every interval and, when its content changed and
// parses, puts its keys in k: a Kubernetes Secret mounted as a file is
// updated in place on rotation, and every process picks the new keys up
// within the kubelet's sync period plus interval, without a restart. A
// file that does not parse is logged and the keys in use are kept. Watch
// returns when ctx ends.
func (k *Keyring) Watch(ctx context.Context, path string, interval time.Duration, log *slog.Logger) {
	last := k.loaded // what Load read, so a change made since is not missed
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
			log.Error("internal auth keys file unreadable; keeping the keys in use", "file", path, "err", err.Error())
			continue
		}
		if bytes.Equal(b, last) {
			continue
		}
		last = b // a bad file is logged once, not every interval
		keys, err := ParseKeys(string(b))
		if err == nil {
			err = k.SetKeys(keys)
		}
		if err != nil {
			log.Error("internal auth keys file invalid; keeping the keys in use", "file", path, "err", err.Error())
			continue
		}
		log.Info("internal auth keys reloaded", "key_ids", k.KeyIDs())
	}
}
