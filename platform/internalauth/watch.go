package internalauth

import (
	"context"
	"log/slog"
	"time"

	"github.com/provcred/platform/filewatch"
)

// Watch reads path every interval and, when its content changed and
// parses, puts its keys in k: a Kubernetes Secret mounted as a file is
// updated in place on rotation, and every process picks the new keys up
// within the kubelet's sync period plus interval, without a restart. A
// file that does not parse is logged and the keys in use are kept. Watch
// returns when ctx ends.
func (k *Keyring) Watch(ctx context.Context, path string, interval time.Duration, log *slog.Logger) {
	// k.loaded is what Load read, so a change made since is not missed.
	filewatch.Poll(ctx, path, interval, k.loaded, func(b []byte) error {
		keys, err := ParseKeys(string(b))
		if err == nil {
			err = k.SetKeys(keys)
		}
		if err != nil {
			return err
		}
		log.Info("internal auth keys reloaded", "key_ids", k.KeyIDs())
		return nil
	}, func(err error) {
		log.Error("internal auth keys file not reloaded; keeping the keys in use", "file", path, "err", err.Error())
	})
}
