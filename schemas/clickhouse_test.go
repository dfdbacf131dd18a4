package schemas

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

var baseRead = regexp.MustCompile(`FROM \{\{\.DB\}\}\.(customer_aggregates|customer_daily|winback_triggers|dlq_records)\b(\s+FINAL)?`)

func TestClickHouseMigrationFiles(t *testing.T) {
	names, err := fs.Glob(ClickHouseMigrations(), "*")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^(\d{3})_[a-z0-9_]+\.sql$`)
	seen := map[string]string{}
	for _, n := range names {
		m := re.FindStringSubmatch(n)
		if m == nil {
			t.Errorf("%s: want NNN_lowercase_name.sql", n)
			continue
		}
		if other, ok := seen[m[1]]; ok {
			t.Errorf("%s and %s share version %s", n, other, m[1])
		}
		seen[m[1]] = n
		b, _ := fs.ReadFile(ClickHouseMigrations(), n)
		if !strings.HasPrefix(string(b), "--") {
			t.Errorf("%s: start with a comment saying what it creates", n)
		}
		// Views read the ReplacingMergeTree tables with FINAL, so that
		// replayed rows never count twice. A materialized view is fed
		// the inserted blocks, where FINAL means nothing.
		// So is a one-off INSERT … SELECT that fills a materialized
		// view's target as the view would have. Reads that duplicates
		// cannot change need no FINAL: max(day), and a customer_id IN
		// (SELECT customer_id …) set.
		for _, stmt := range strings.Split(string(b), ";") {
			if strings.Contains(stmt, "CREATE MATERIALIZED VIEW") || strings.Contains(stmt, "INSERT INTO") {
				continue
			}
			for _, loc := range baseRead.FindAllStringSubmatchIndex(stmt, -1) {
				before := stmt[max(0, loc[0]-40):loc[0]]
				if loc[4] >= 0 || strings.Contains(before, "SELECT max(day)") || strings.Contains(before, "IN (SELECT customer_id") {
					continue
				}
				t.Errorf("%s: reads %s without FINAL", n, stmt[loc[2]:loc[3]])
			}
		}
	}
	if seen["000"] == "" || len(names) < 19 {
		t.Fatalf("migrations %v", names)
	}
}
