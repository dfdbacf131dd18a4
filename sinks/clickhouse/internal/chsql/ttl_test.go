package chsql

import (
	"slices"
	"strings"
	"testing"

	"github.com/winback/winback/schemas"
)

// ttlMigration renders 091_ttl.sql with p and returns it, its statements
// without comments.
func ttlMigration(t *testing.T, p Params) Migration {
	t.Helper()
	ms, err := Load(schemas.ClickHouseMigrations(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == "091_ttl.sql" {
			// the statements without their comment lines
			for i, st := range m.Statements {
				var code []string
				for _, l := range strings.Split(st, "\n") {
					if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
						code = append(code, l)
					}
				}
				m.Statements[i] = strings.Join(code, "\n")
			}
			return m
		}
	}
	t.Fatal("no 091_ttl.sql")
	return Migration{}
}

// TestTTLRendered: the configured TTLs become ALTER TABLE ... MODIFY TTL on
// a server that has table TTLs, only for the tables with a TTL, on the
// local tables in cluster mode; on 18.16, and without a TTL, the migration
// has no statement (so an upgrade of 18.16 or of a setup without TTLs
// changes nothing); another value renders another text, which Apply runs
// again.
func TestTTLRendered(t *testing.T) {
	modern := testParams()
	modern.Server, _ = ParseVersion("26.7.2.1")
	modern.Features = FeaturesOf(modern.Server)
	ttl := TTL{DailyDays: 730, DeadLetterDays: 90}

	for name, p := range map[string]Params{
		"18.16 with TTLs": func() Params { p := testParams(); p.TTL = ttl; return p }(),
		"26.7 without":    modern,
	} {
		if m := ttlMigration(t, p); len(m.Statements) != 0 {
			t.Errorf("%s: %q, want no statement", name, m.Statements)
		}
	}

	p := modern
	p.TTL = ttl
	m := ttlMigration(t, p)
	want := []string{
		"ALTER TABLE db.customer_daily MODIFY TTL day + INTERVAL 730 DAY",
		"ALTER TABLE db.dlq_records MODIFY TTL at + INTERVAL 90 DAY",
	}
	if !slices.Equal(m.Statements, want) {
		t.Errorf("26.7: %q, want %q", m.Statements, want)
	}
	if !strings.Contains(p.String(), "ttl_days=daily:730,triggers:0,dead_letters:90") {
		t.Errorf("params %q do not record the TTLs", p.String())
	}
	longer := p
	longer.TTL.DailyDays = 1095
	if ttlMigration(t, longer).RenderedChecksum == m.RenderedChecksum {
		t.Error("another TTL renders the same text: Apply would not run it again")
	}

	p.Cluster = Cluster{Name: "wb"}
	m = ttlMigration(t, p)
	for _, st := range m.Statements {
		if !strings.Contains(st, "_local MODIFY TTL") {
			t.Errorf("cluster mode: %q, want the local table's TTL only", st)
		}
	}
	if len(m.Statements) != 2 {
		t.Errorf("cluster mode: %q, want two statements", m.Statements)
	}

	bad := modern
	bad.TTL.TriggerDays = -1
	if _, err := Load(schemas.ClickHouseMigrations(), bad); err == nil {
		t.Error("a negative TTL loads")
	}
}
