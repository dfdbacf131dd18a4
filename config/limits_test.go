package config

import (
	"strings"
	"testing"
)

// TestLimits checks the settings that bound input and output records: each
// bad value fails, naming its flag and the fix.
func TestLimits(t *testing.T) {
	cases := []struct {
		args []string
		want string // "" = valid
	}{
		{nil, ""},
		{[]string{"--decode-max-future-skew", "1h"}, ""},
		{[]string{"--decode-max-future-skew", "0s"}, "--decode-max-future-skew: must be positive"},
		{[]string{"--decode-max-future-skew", "-5m"}, "--decode-max-future-skew: must be positive"},
		{[]string{"--dlq-max-value-bytes", "972800"}, ""},
		{[]string{"--dlq-max-value-bytes", "972801"}, "--dlq-max-value-bytes: 972801 is too large"},
		{[]string{"--dlq-max-value-bytes", "1048576"}, "1,000,012-byte batch limit"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, err := load(t, c.args, nil)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	cfg, err := load(t, nil, map[string]string{"WINBACK_DECODE_MAX_FUTURE_SKEW": "90s"})
	if err != nil || cfg.Decode.MaxFutureSkew.Seconds() != 90 {
		t.Errorf("env: skew %v, %v", cfg.Decode.MaxFutureSkew, err)
	}
	if d := Default(); d.Decode.MaxFutureSkew.Minutes() != 5 {
		t.Errorf("default skew %v, want 5m", d.Decode.MaxFutureSkew)
	}
}
