package config

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/platform/config"
)

func TestRateLimitSettings(t *testing.T) {
	c, err := config.Parse[Config](withKey(t, map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis != nil || len(c.Policies) != 5 || c.Policies["chat"].Burst != 5 || c.Policies["import"].Period != time.Hour ||
		c.Policies["default"].Rate != 200 || c.RateLimitFailureMode != "open" || c.RateLimitRedisTimeout != 25*time.Millisecond {
		t.Fatalf("defaults: redis %v policies %+v", c.Redis, c.Policies)
	}
	if c.Public()["rate_limit_backend"] != "local" {
		t.Fatal("public config: backend")
	}
	c, err = config.Parse[Config](withKey(t, map[string]string{"REDIS_URL": "redis://:s3cret@redis:6380/1", "RATE_LIMIT_CHAT": "5/1s,burst=2"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis == nil || c.Redis.InitAddress[0] != "redis:6380" || c.Redis.SelectDB != 1 || c.Policies["chat"].Rate != 5 {
		t.Fatalf("redis %+v chat %+v", c.Redis, c.Policies["chat"])
	}
	for _, v := range c.Public() {
		if strings.Contains(strings.ToLower(strings.TrimSpace(toString(v))), "s3cret") {
			t.Fatal("public config shows the Redis password")
		}
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"RATE_LIMIT_CHAT": "20"}, "RATE_LIMIT_CHAT"},
		{map[string]string{"RATE_LIMIT_IMPORT": "5/1h,burst=0"}, "RATE_LIMIT_IMPORT"},
		{map[string]string{"RATE_LIMIT_FAILURE_MODE": "maybe"}, "RATE_LIMIT_FAILURE_MODE"},
		{map[string]string{"RATE_LIMIT_REDIS_TIMEOUT": "0s"}, "RATE_LIMIT_REDIS_TIMEOUT"},
		{map[string]string{"RATE_LIMIT_REPLICAS": "-1"}, "RATE_LIMIT_REPLICAS"},
		{map[string]string{"REDIS_URL": "http://user:s3cret@x"}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://u:s3cret@x:1/nodb"}, "REDIS_URL"},
	} {
		_, err := config.Parse[Config](tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: %v (want an error naming %s, without the password)", tt.env, err, tt.want)
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
