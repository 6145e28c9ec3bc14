package config

import (
	"strings"
	"testing"
	"time"

	"github.com/provcred/platform/config"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Parse[Config](map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Configured() || c.LLMModel != "gpt-4o-mini" || c.LLMTimeout != time.Minute || c.MaxConcurrentLLMRequests != 5 ||
		c.LLMQueueWait != 10*time.Second || c.Retention != 30*24*time.Hour || c.MaxToolRounds != 4 || c.SharePII ||
		c.CredentialURL != "http://127.0.0.1:8001" || c.StatsURL != "http://127.0.0.1:8002" || c.HistoryTokens != 3000 {
		t.Fatalf("%+v", c)
	}
	if _, ok := c.Public()["llm_api_key"]; ok {
		t.Fatal("the key is in the public view")
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	tests := map[string]map[string]string{
		"LLM_BASE_URL":                {"LLM_BASE_URL": "ftp://user:hunter2@example.org"},
		"CREDENTIAL_URL":              {"CREDENTIAL_URL": "not a url"},
		"MAX_CONCURRENT_LLM_REQUESTS": {"MAX_CONCURRENT_LLM_REQUESTS": "0"},
		"CHAT_MAX_TOOL_ROUNDS":        {"CHAT_MAX_TOOL_ROUNDS": "-1"},
		"CHAT_TOOL_MAX_RESULT_BYTES":  {"CHAT_TOOL_MAX_RESULT_BYTES": "10"},
		"CHAT_RETENTION":              {"CHAT_RETENTION": "0s"},
		"CHAT_SSE_KEEPALIVE":          {"CHAT_SSE_KEEPALIVE": "-1s"},
		"CHAT_SHARE_PII":              {"CHAT_SHARE_PII": "maybe"},
	}
	for name, env := range tests {
		_, err := config.Parse[Config](env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the URL's password: %v", name, err)
		}
	}
}
