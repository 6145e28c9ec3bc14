package metrics

import (
	"fmt"
	"strings"
)

// Value returns the current value of the series name{labels} (labels as
// "k=v" pairs), for tests and health reports. Missing series read as 0.
func (m *Registry) Value(name string, labels ...string) (float64, error) {
	mfs, err := m.reg.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather: %w", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range s.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if have[k] != v {
					continue series
				}
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), nil
			case s.Gauge != nil:
				return s.Gauge.GetValue(), nil
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), nil
			}
		}
	}
	return 0, nil
}
