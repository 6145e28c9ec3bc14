package config

import (
	"strings"
	"testing"

	platformcfg "github.com/provcred/platform/config"
)

func TestImportsConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		env  map[string]string
		want float64
		bad  bool
	}{
		{name: "default", env: map[string]string{}, want: 0.5},
		{name: "set", env: map[string]string{"IMPORT_SHRINK_MIN_RATIO": "0.8"}, want: 0.8},
		{name: "off", env: map[string]string{"IMPORT_SHRINK_MIN_RATIO": "0"}, want: 0},
		{name: "over one", env: map[string]string{"IMPORT_SHRINK_MIN_RATIO": "1.5"}, bad: true},
		{name: "negative", env: map[string]string{"IMPORT_SHRINK_MIN_RATIO": "-0.1"}, bad: true},
		{name: "not a number", env: map[string]string{"IMPORT_SHRINK_MIN_RATIO": "half"}, bad: true},
	} {
		cfg, err := platformcfg.Parse[Config](c.env)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "IMPORT_SHRINK_MIN_RATIO") {
				t.Errorf("%s: error %v does not name IMPORT_SHRINK_MIN_RATIO", c.name, err)
			}
			continue
		}
		if err != nil || cfg.ImportShrinkMinRatio != c.want || cfg.Public()["import_shrink_min_ratio"] != c.want {
			t.Errorf("%s: %v, %v", c.name, cfg.ImportShrinkMinRatio, err)
		}
	}
}
