package chsql

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/winback/winback/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func clusterParams(replicated bool, server string) Params {
	p := testParams()
	p.Server, _ = ParseVersion(server)
	p.Features = FeaturesOf(p.Server)
	p.Cluster = Cluster{Name: "wb", Replicated: replicated}
	return p
}

func renderOne(t *testing.T, c Cluster, sts ...string) []clusterStmt {
	t.Helper()
	r := newClusterRenderer(c, "db")
	var out []clusterStmt
	for _, st := range sts {
		o, err := r.render(st)
		if err != nil {
			t.Fatalf("render %q: %v", st, err)
		}
		out = append(out, o...)
	}
	return out
}

func sqls(cs []clusterStmt) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.sql)
	}
	return out
}

func TestClusterRender(t *testing.T) {
	c := Cluster{Name: "wb"}
	table := "CREATE TABLE IF NOT EXISTS db.t (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100"
	tests := []struct {
		name string
		c    Cluster
		in   []string
		want []string
	}{
		{"data table", c, []string{table}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
		}},
		{"replicated", Cluster{Name: "wb", Replicated: true}, []string{table}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db.t_local', '{replica}', v) ORDER BY customer_id SETTINGS replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
		}},
		{"replicated without engine arguments", Cluster{Name: "wb", Replicated: true},
			[]string{"CREATE TABLE db.l (version UInt32, seq UInt64) ENGINE = MergeTree ORDER BY (version, seq)"}, []string{
				"CREATE TABLE db.l_local (version UInt32, seq UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db.l_local', '{replica}') ORDER BY (version, seq)",
				"CREATE TABLE db.l AS db.l_local ENGINE = Distributed(wb, db, l_local, cityHash64(version, seq))",
			}},
		{"memory table stays", c, []string{"CREATE TABLE db.m (x UInt8) ENGINE = Memory"}, []string{"CREATE TABLE db.m (x UInt8) ENGINE = Memory"}},
		{"alter column goes to both", c, []string{table, "ALTER TABLE db.t ADD COLUMN z UInt8 DEFAULT 0"}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
			"ALTER TABLE db.t_local ADD COLUMN z UInt8 DEFAULT 0",
			"ALTER TABLE db.t ADD COLUMN z UInt8 DEFAULT 0",
		}},
		{"alter setting goes to the local table", c, []string{table, "ALTER TABLE db.t MODIFY SETTING non_replicated_deduplication_window = 5"}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
			"ALTER TABLE db.t_local MODIFY SETTING non_replicated_deduplication_window = 5",
		}},
		{"materialized view reads and writes local tables", c, []string{table,
			"CREATE TABLE db.d (customer_id String, day Date) ENGINE = ReplacingMergeTree ORDER BY (customer_id, day)",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS db.feed TO db.d AS SELECT customer_id, today() AS day FROM db.t -- db.t"}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
			"CREATE TABLE db.d_local (customer_id String, day Date) ENGINE = ReplacingMergeTree ORDER BY (customer_id, day)",
			"CREATE TABLE db.d AS db.d_local ENGINE = Distributed(wb, db, d_local, cityHash64(customer_id))",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS db.feed TO db.d_local AS SELECT customer_id, today() AS day FROM db.t_local -- db.t",
		}},
		{"materialized view with an inner engine", c, []string{table,
			"CREATE MATERIALIZED VIEW db.s ENGINE = SummingMergeTree ORDER BY (day) AS SELECT toDate(now()) AS day, count() AS n FROM db.t GROUP BY day"}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
			"CREATE MATERIALIZED VIEW db.s_local ENGINE = SummingMergeTree ORDER BY (day) AS SELECT toDate(now()) AS day, count() AS n FROM db.t_local GROUP BY day",
			"CREATE TABLE db.s AS db.s_local ENGINE = Distributed(wb, db, s_local, cityHash64(day))",
		}},
		{"views: joins and IN become GLOBAL, ARRAY JOIN and strings stay", c, []string{
			"CREATE VIEW db.v AS SELECT 'a JOIN b' FROM db.t AS a ANY LEFT JOIN (SELECT 1) USING x ARRAY JOIN y LEFT ARRAY JOIN z INNER JOIN w USING q GLOBAL JOIN g USING q WHERE x IN (SELECT 1) AND y NOT IN (SELECT 2) AND z IN (1, 2) AND q GLOBAL IN (SELECT 3)"}, []string{
			"CREATE VIEW db.v AS SELECT 'a JOIN b' FROM db.t AS a GLOBAL ANY LEFT JOIN (SELECT 1) USING x ARRAY JOIN y LEFT ARRAY JOIN z GLOBAL INNER JOIN w USING q GLOBAL JOIN g USING q WHERE x GLOBAL IN (SELECT 1) AND y GLOBAL NOT IN (SELECT 2) AND z IN (1, 2) AND q GLOBAL IN (SELECT 3)",
		}},
		{"drop of a data table drops both", c, []string{table, "DROP TABLE IF EXISTS db.t"}, []string{
			"CREATE TABLE IF NOT EXISTS db.t_local (customer_id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE IF NOT EXISTS db.t AS db.t_local ENGINE = Distributed(wb, db, t_local, cityHash64(customer_id))",
			"DROP TABLE IF EXISTS db.t",
			"DROP TABLE IF EXISTS db.t_local",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sqls(renderOne(t, tc.c, tc.in...)); !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	// Backfills run once, DDL everywhere.
	out := renderOne(t, c, table, "INSERT INTO db.t (customer_id) SELECT 'x'", "DROP TABLE IF EXISTS db.v")
	if got := []bool{out[0].everywhere, out[1].everywhere, out[2].everywhere, out[3].everywhere}; !slices.Equal(got, []bool{true, true, false, true}) {
		t.Errorf("everywhere %v", got)
	}
	if _, err := newClusterRenderer(c, "db").render("RENAME TABLE db.a TO db.b"); err == nil {
		t.Error("RENAME rendered without a cluster form")
	}
	if _, err := newClusterRenderer(c, "db").render("CREATE TABLE db.r (x UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x"); err == nil {
		t.Error("an already replicated table was accepted")
	}
}

func TestOnCluster(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE DATABASE IF NOT EXISTS db":                    "CREATE DATABASE IF NOT EXISTS db ON CLUSTER wb",
		"CREATE TABLE IF NOT EXISTS db.t (x UInt8)":           "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER wb (x UInt8)",
		"-- note\nCREATE TABLE db.t AS db.t_local ENGINE = X": "-- note\nCREATE TABLE db.t ON CLUSTER wb AS db.t_local ENGINE = X",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS db.f TO db.d": "CREATE MATERIALIZED VIEW IF NOT EXISTS db.f ON CLUSTER wb TO db.d",
		"CREATE VIEW db.v AS SELECT 1":                        "CREATE VIEW db.v ON CLUSTER wb AS SELECT 1",
		"DROP TABLE IF EXISTS db.v":                           "DROP TABLE IF EXISTS db.v ON CLUSTER wb",
		"ALTER TABLE db.t_local DELETE WHERE x IN ('a')":      "ALTER TABLE db.t_local ON CLUSTER wb DELETE WHERE x IN ('a')",
	} {
		got, err := OnCluster(in, "wb")
		if err != nil || got != want {
			t.Errorf("OnCluster(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := OnCluster("INSERT INTO db.t SELECT 1", "wb"); err == nil {
		t.Error("ON CLUSTER for an INSERT")
	}
}

// TestClusterGolden renders every migration for a cluster
// (testdata/cluster.golden: 18.16; testdata/replicated.golden: 26.7 with
// Replicated tables); go test -update rewrites them. Comment lines are
// left out; "-- once" marks a statement that runs on one node only.
func TestClusterGolden(t *testing.T) {
	for _, g := range []struct {
		file string
		p    Params
	}{
		{"testdata/cluster.golden", clusterParams(false, "18.16.1")},
		{"testdata/replicated.golden", clusterParams(true, "26.7.2.1")},
	} {
		ms, err := Load(schemas.ClickHouseMigrations(), g.p)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, m := range ms {
			b.WriteString("=== " + m.Name + "\n")
			for i, st := range m.Statements {
				if !m.Everywhere[i] {
					b.WriteString("-- once\n")
				}
				for _, l := range strings.Split(st, "\n") {
					if !strings.HasPrefix(strings.TrimSpace(l), "--") {
						b.WriteString(l + "\n")
					}
				}
				b.WriteString(";\n")
			}
		}
		if *update {
			if err := os.WriteFile(g.file, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(g.file)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			gl, wl := strings.Split(b.String(), "\n"), strings.Split(string(want), "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("%s differs at line %d (go test -update rewrites it):\n got %s\nwant %s", g.file, i+1, gl[i], wl[i])
				}
			}
			t.Fatalf("%s: %d lines, want %d", g.file, len(gl), len(wl))
		}
		// Every data table is Distributed over its local table, and no
		// statement names a data table's local table but DDL.
		text := b.String()
		for _, tb := range []string{"customer_aggregates", "customer_daily", "winback_triggers", "dlq_records", "schema_migrations"} {
			if !strings.Contains(text, "CREATE TABLE IF NOT EXISTS db."+tb+" AS db."+tb+"_local ENGINE = Distributed(wb, db, "+tb+"_local, ") {
				t.Errorf("%s: no Distributed %s", g.file, tb)
			}
		}
		if g.p.Cluster.Replicated && strings.Contains(text, "non_replicated_deduplication_window") {
			t.Errorf("%s: replicated tables with non_replicated_deduplication_window", g.file)
		}
	}
}

// TestSingleNodeUnchanged: without a cluster the rendered text is the
// template's, statement for statement, and nothing is marked.
func TestSingleNodeUnchanged(t *testing.T) {
	p := testParams()
	ms, err := Load(schemas.ClickHouseMigrations(), p)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Load(schemas.ClickHouseMigrations(), clusterParams(false, "18.16.1"))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Everywhere != nil {
			t.Errorf("%s: Everywhere set on one node", m.Name)
		}
		if !slices.Equal(m.Statements, Split(m.SQL)) {
			t.Errorf("%s: statements are not the rendered file's", m.Name)
		}
		if m.Checksum != cl[i].Checksum {
			t.Errorf("%s: the file checksum depends on the cluster", m.Name)
		}
	}
	if ms[1].RenderedChecksum == cl[1].RenderedChecksum {
		t.Error("the rendered checksum does not depend on the cluster")
	}
	if got := clusterParams(true, "18.16.1").String(); !strings.HasSuffix(got, " cluster=wb replicated=true") {
		t.Errorf("params %q do not record the cluster", got)
	}
	if got := p.String(); strings.Contains(got, "cluster") {
		t.Errorf("single-node params %q mention a cluster", got)
	}
	bad := p
	bad.Cluster.Name = "a-b"
	if _, err := Load(fstest.MapFS{"000_a.sql": {Data: []byte("SELECT 1")}}, bad); err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Errorf("cluster a-b: %v", err)
	}
}

// FuzzClusterRender: any statement tokenizes into ordered, in-bounds
// tokens, and rendering it for a cluster (after a data table exists) and
// adding ON CLUSTER never panic; ON CLUSTER only inserts.
func FuzzClusterRender(f *testing.F) {
	for _, s := range []string{
		"CREATE TABLE db.t (customer_id String) ENGINE = ReplacingMergeTree(v) ORDER BY customer_id",
		"CREATE VIEW db.v AS SELECT (SELECT max(x) FROM db.t FINAL) FROM db.t FINAL ANY LEFT JOIN (SELECT 1) USING x",
		"ALTER TABLE db.t ADD COLUMN z UInt8", "CREATE MATERIALIZED VIEW db.m ENGINE = SummingMergeTree ORDER BY (", "'unterminated", "-- c\nDROP TABLE",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, st string) {
		at := 0
		for _, tk := range tokens(st) {
			if tk.start < at || tk.end <= tk.start || tk.end > len(st) || st[tk.start:tk.end] != tk.text {
				t.Fatalf("%q: bad token %+v after %d", st, tk, at)
			}
			at = tk.end
		}
		for _, c := range []Cluster{{Name: "wb"}, {Name: "wb", Replicated: true}} {
			r := newClusterRenderer(c, "db")
			if _, err := r.render("CREATE TABLE db.t (customer_id String) ENGINE = MergeTree ORDER BY customer_id"); err != nil {
				t.Fatal(err)
			}
			_, _ = r.render(st)
		}
		if out, err := OnCluster(st, "wb"); err == nil && len(out) != len(st)+len(" ON CLUSTER wb") {
			t.Fatalf("OnCluster(%q) = %q: not an insertion", st, out)
		}
	})
}
