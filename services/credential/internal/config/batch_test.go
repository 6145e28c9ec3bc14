package config

import (
	"strings"
	"testing"

	platformcfg "github.com/provcred/platform/config"
)

func TestBatchSettings(t *testing.T) {
	t.Parallel()
	cfg, err := platformcfg.Parse[Config](map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchMaxAttempts != 5 || cfg.BatchJobTimeout.String() != "2m0s" || !cfg.BatchWorkersEnabled {
		t.Fatalf("defaults %+v", cfg.Batch)
	}
	cases := []struct {
		env  map[string]string
		want string // variable named in the error; "" = valid
	}{
		{map[string]string{"BATCH_MAX_ATTEMPTS": "0"}, "BATCH_MAX_ATTEMPTS"},
		{map[string]string{"BATCH_MAX_ATTEMPTS": "101"}, "BATCH_MAX_ATTEMPTS"},
		{map[string]string{"BATCH_JOB_TIMEOUT": "0s"}, "BATCH_JOB_TIMEOUT"},
		{map[string]string{"BATCH_JOB_TIMEOUT": "20m"}, "BATCH_RESCUE_STUCK_AFTER"},
		{map[string]string{"BATCH_JOB_TIMEOUT": "2s", "BATCH_RESCUE_STUCK_AFTER": "3s", "WEBHOOK_TIMEOUT": "1s"}, ""},
		{map[string]string{"BATCH_SNOOZE_BASE": "1m", "BATCH_SNOOZE_MAX": "30s"}, "BATCH_SNOOZE_MAX"},
		{map[string]string{"BATCH_WAIT_MAX": "1h"}, "BATCH_WAIT_MAX"},
		{map[string]string{"BATCH_WAIT_MAX": "-1s"}, "BATCH_WAIT_MAX"},
		{map[string]string{"BATCH_METRICS_INTERVAL": "0s"}, "BATCH_METRICS_INTERVAL"},
		{map[string]string{"BATCH_WORKERS_ENABLED": "false"}, ""},
		{map[string]string{"BATCH_SNOOZE_BASE": "soon"}, "BATCH_SNOOZE_BASE"},
	}
	for _, tc := range cases {
		_, err := platformcfg.Parse[Config](tc.env)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
	if p := cfg.Public(); p["batch_max_attempts"] != 5 {
		t.Fatalf("public %v", p)
	}
}
