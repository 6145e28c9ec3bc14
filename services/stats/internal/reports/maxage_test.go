package reports

import (
	"testing"
	"time"
)

// VERIFICATION_MAX_AGE is one setting: the summary's stale count and the
// expiring report's limit and stale count follow it (120 days by default,
// like the credential service's).
func TestVerificationMaxAgeSetting(t *testing.T) {
	t.Parallel()
	type answer struct {
		stale int64
		days  int
		list  int64
	}
	read := func(maxAge time.Duration) answer {
		k := seeded(t, kitOptions{maxAge: maxAge})
		var s Summary
		k.ok("/stats/summary", &s)
		var e Expiring
		k.ok("/stats/expiring?kind=verification", &e)
		return answer{stale: s.VerificationStale, days: e.StalenessLimitDays, list: e.Counts[KindVerification]["stale"] + e.Counts[KindVerification]["never_verified"]}
	}
	def, cvo, hour := read(0), read(90*24*time.Hour), read(time.Hour)
	if def.days != 120 || cvo.days != 90 || hour.days != 0 {
		t.Errorf("limits %d %d %d days, want 120 90 0", def.days, cvo.days, hour.days)
	}
	// Verified a day before "now": fresh under 120 or 90 days, stale after an hour.
	if hour.stale <= def.stale || hour.list <= def.list || cvo.stale < def.stale {
		t.Errorf("stale counts: default %+v, 90 days %+v, one hour %+v", def, cvo, hour)
	}
	if hour.stale != hour.list || def.stale != def.list {
		t.Errorf("summary and expiring disagree: default %+v, one hour %+v", def, hour)
	}
}
