package config

import (
	"flag"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEnvironRoundTrip: a config rendered by Environ and loaded back from
// that environment alone is the same config, and settings left at their
// defaults are not rendered.
func TestEnvironRoundTrip(t *testing.T) {
	c := Default()
	c.Kafka.Brokers = []string{"a:9092", "b:9092"}
	c.Kafka.Group = "g1"
	c.Kafka.SessionTimeout = 10 * time.Second
	c.Topics.Orders = "in.orders"
	c.ClickHouse.DSN = "clickhouse://u:p@h:9000/db"
	c.HTTPPprof = true
	env := Environ(&c)
	for _, want := range []string{"WINBACK_KAFKA_BROKERS=a:9092,b:9092", "WINBACK_KAFKA_GROUP=g1", "WINBACK_KAFKA_SESSION_TIMEOUT=10s", "WINBACK_HTTP_PPROF=true"} {
		if !slices.Contains(env, want) {
			t.Errorf("Environ lacks %s: %v", want, env)
		}
	}
	def := Default()
	if got := Environ(&def); len(got) != 0 {
		t.Errorf("Environ(Default()) = %v, want nothing", got)
	}

	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	back := Default()
	l := Bind(flag.NewFlagSet("t", flag.ContinueOnError), &back)
	if err := l.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("loaded back\n%+v\nwant\n%+v", back, c)
	}
}
