package chdbtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/winback/winback/schemas"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// TestTTLModern: on a modern engine, configuring TTLs on an installed
// database runs migration 091 again (its rendered text changed), which
// sets them on the tables; ClickHouse then deletes the expired rows in a
// merge and keeps the others. The tables without a TTL stay without one.
func TestTTLModern(t *testing.T) {
	p := migrate(t, 90, chsql.FeaturesOf(engineVersion(t)))
	p.TTL = chsql.TTL{TriggerDays: 365, DeadLetterDays: 30}
	ran, err := chsql.Apply(t.Context(), executor{}, schemas.ClickHouseMigrations(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []string{"091_ttl.sql"}) {
		t.Fatalf("apply with TTLs ran %v, want 091_ttl.sql", ran)
	}
	ddl := func(table string) string {
		return query(t, "SELECT create_table_query FROM system.tables WHERE database = '"+p.Database+"' AND name = '"+table+"'")[0][0]
	}
	for table, want := range map[string]string{
		"winback_triggers": "TTL as_of + toIntervalDay(365)",
		"dlq_records":      "TTL at + toIntervalDay(30)",
		"customer_daily":   "",
	} {
		got := ddl(table)
		if want == "" && strings.Contains(got, " TTL ") || want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: %s\nwant TTL %q", table, got, want)
		}
	}
	exec(t, "INSERT INTO "+p.Database+".winback_triggers (trigger_id, customer_id, kind, as_of, emitted_at) "+
		"SELECT 'old', 'c', 'WINBACK', now() - INTERVAL 400 DAY, now() UNION ALL "+
		"SELECT 'new', 'c', 'WINBACK', now() - INTERVAL 300 DAY, now()")
	exec(t, "OPTIMIZE TABLE "+p.Database+".winback_triggers FINAL")
	if got := query(t, "SELECT trigger_id FROM "+p.Database+".winback_triggers FINAL"); len(got) != 1 || got[0][0] != "new" {
		t.Errorf("triggers after the TTL merge: %v, want only the one within 365 days", got)
	}
}
