package chsql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestSplit(t *testing.T) {
	f := func(script string, want ...string) {
		t.Helper()
		if got := Split(script); !slices.Equal(got, want) {
			t.Errorf("Split(%q)\n got %q\nwant %q", script, got, want)
		}
	}
	f("")
	f("  -- only a comment;\n /* and ; another */ ;;\n")
	f("SELECT 1", "SELECT 1")
	f("SELECT 1; SELECT 2;", "SELECT 1", "SELECT 2")
	f("-- lead; in\nCREATE TABLE t (x String) ENGINE = Memory;\n", "-- lead; in\nCREATE TABLE t (x String) ENGINE = Memory")
	f(`SELECT 'a;b', "c;d", `+"`e;f`"+`; SELECT 2`, `SELECT 'a;b', "c;d", `+"`e;f`", "SELECT 2")
	f(`SELECT 'it\'s; fine', 'x''; y'; SELECT 3`, `SELECT 'it\'s; fine', 'x''; y'`, "SELECT 3")
	f("SELECT 1 /* ; */ + 1; -- trailing ;\n", "SELECT 1 /* ; */ + 1")
	f("SELECT 'unterminated;", "SELECT 'unterminated;")
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"SELECT 1; SELECT 2", "-- x;\nSELECT ';'", "/* ; */", "'\\'';", "`a;b`;\"c\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, st := range Split(s) {
			if strings.TrimSpace(st) == "" {
				t.Fatalf("Split(%q) gave an empty statement", s)
			}
			if !strings.Contains(s, st) {
				t.Fatalf("Split(%q) gave %q, not a part of the input", s, st)
			}
		}
	})
}

func TestQuote(t *testing.T) {
	got := Quote("a'b\\c\nd\te\x00")
	if want := `'a\'b\\c\nd\te\0'`; got != want {
		t.Fatalf("Quote = %s, want %s", got, want)
	}
}

func testParams() Params {
	v, _ := ParseVersion("18.16.1")
	return Params{Database: "db", ActiveDays: 30, Server: v, Features: FeaturesOf(v), Lock: LockOptions{Settle: time.Millisecond, Poll: time.Millisecond}}
}

func TestLoadRejects(t *testing.T) {
	f := func(fsys fstest.MapFS, wantErr string) {
		t.Helper()
		_, err := Load(fsys, testParams())
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("got %v, want an error with %q", err, wantErr)
		}
	}
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	f(fstest.MapFS{"001_a.sql": file("SELECT 1")}, "000_")
	f(fstest.MapFS{"000_a.sql": file(""), "1_b.sql": file("")}, "1_b.sql")
	f(fstest.MapFS{"000_a.sql": file(""), "001_b.sql": file(""), "001_c.sql": file("")}, "same version")
	f(fstest.MapFS{"000_a.sql": file("{{.Nope}}")}, "000_a.sql")
	f(fstest.MapFS{"000_a.sql": file("{{")}, "000_a.sql")
}

func TestRender(t *testing.T) {
	fsys := fstest.MapFS{"000_x.sql": {Data: []byte("CREATE TABLE {{.DB}}.t (s {{.String}}) {{if .DedupWindow}}SETTINGS w = {{.DedupWindow}}{{end}}; SELECT {{.ActiveDays}};")}}
	old := testParams()
	ms, err := Load(fsys, old)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CREATE TABLE db.t (s String)", "SELECT 30"}; !slices.Equal(ms[0].Statements, want) {
		t.Errorf("18.16: %q, want %q", ms[0].Statements, want)
	}
	modern := old
	modern.Server, _ = ParseVersion("26.7.2.1")
	modern.Features = FeaturesOf(modern.Server)
	mm, err := Load(fsys, modern)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CREATE TABLE db.t (s LowCardinality(String)) SETTINGS w = 1000", "SELECT 30"}; !slices.Equal(mm[0].Statements, want) {
		t.Errorf("26.7: %q, want %q", mm[0].Statements, want)
	}
	if ms[0].Checksum != mm[0].Checksum || ms[0].RenderedChecksum == mm[0].RenderedChecksum {
		t.Error("the file checksum must not depend on the server, the rendered one must")
	}
	if got := modern.String(); got != "active_days=30 string=LowCardinality(String) dedup_window=1000" {
		t.Errorf("params %q", got)
	}
}

// memExec is an Executor over a list, for the ledger logic; the real
// engines are tested in sinks/clickhouse and chdbtest.
type memExec struct {
	ran    []string
	ledger [][]string
	fail   string
	claim  []string // the latest lock claim: token, owner
}

func (m *memExec) Exec(_ context.Context, q string) error {
	if m.fail != "" && strings.Contains(q, m.fail) {
		return errors.New("boom")
	}
	if strings.HasPrefix(q, "INSERT INTO db.schema_lock") {
		// SELECT 'migrate', '<token>', '<owner>', now(), ...
		parts := strings.Split(strings.SplitN(q, " SELECT ", 2)[1], ", ")
		m.claim = []string{strings.Trim(parts[1], "'"), strings.Trim(parts[2], "'")}
		return nil
	}
	if strings.HasPrefix(q, "CREATE TABLE IF NOT EXISTS db.schema_lock") {
		return nil
	}
	m.ran = append(m.ran, q)
	if strings.HasPrefix(q, "INSERT INTO db.schema_migrations") {
		// SELECT <version>, '<name>', '<checksum>', '<rendered>', ...
		parts := strings.SplitN(strings.SplitN(q, " SELECT ", 2)[1], ", ", 5)
		unq := func(s string) string { return strings.Trim(s, "'") }
		m.ledger = append(m.ledger, []string{parts[0], unq(parts[1]), unq(parts[2]), unq(parts[3])})
	}
	return nil
}

func (m *memExec) Query(_ context.Context, q string) ([][]string, error) {
	if strings.Contains(q, "schema_lock") {
		return [][]string{m.claim}, nil
	}
	latest := map[string][]string{}
	var order []string
	for _, r := range m.ledger {
		if _, ok := latest[r[0]]; !ok {
			order = append(order, r[0])
		}
		latest[r[0]] = r
	}
	var out [][]string
	for _, v := range order {
		out = append(out, latest[v])
	}
	return out, nil
}

func TestApplyLedger(t *testing.T) {
	fsys := fstest.MapFS{
		"000_ledger.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS {{.DB}}.schema_migrations (x UInt8);")},
		"001_t.sql":      {Data: []byte("CREATE TABLE IF NOT EXISTS {{.DB}}.t (x UInt8);")},
		"002_v.sql":      {Data: []byte("DROP TABLE IF EXISTS {{.DB}}.v; CREATE VIEW {{.DB}}.v AS SELECT {{.ActiveDays}};")},
	}
	m := &memExec{}
	p := testParams()
	ran, err := Apply(t.Context(), m, fsys, p, nil)
	if err != nil || !slices.Equal(ran, []string{"000_ledger.sql", "001_t.sql", "002_v.sql"}) {
		t.Fatalf("first: %v %v", ran, err)
	}
	m.ran = nil
	if ran, err := Apply(t.Context(), m, fsys, p, nil); err != nil || len(ran) != 0 {
		t.Fatalf("second: %v %v", ran, err)
	}
	if len(m.ran) != 1 {
		t.Fatalf("second apply ran %q, want only the ledger DDL", m.ran)
	}
	p.ActiveDays = 7
	if ran, err := Apply(t.Context(), m, fsys, p, nil); err != nil || !slices.Equal(ran, []string{"002_v.sql"}) {
		t.Fatalf("active days 7: %v %v", ran, err)
	}
	// A statement failing stops there and records nothing for it.
	fsys["003_bad.sql"] = &fstest.MapFile{Data: []byte("SELECT 1; SELECT boom;")}
	n := len(m.ledger)
	if _, err := Apply(t.Context(), &memExec{ledger: m.ledger, fail: "boom"}, fsys, p, nil); err == nil || !strings.Contains(err.Error(), "003_bad.sql: statement 2") {
		t.Fatalf("got %v, want an error naming 003_bad.sql statement 2", err)
	}
	if len(m.ledger) != n {
		t.Fatal("a failed migration was recorded")
	}
	// A file renamed under an applied version.
	delete(fsys, "003_bad.sql")
	fsys["001_renamed.sql"] = fsys["001_t.sql"]
	delete(fsys, "001_t.sql")
	var ce *ChecksumError
	if _, err := Apply(t.Context(), m, fsys, p, nil); !errors.As(err, &ce) || ce.File != "001_renamed.sql" || !strings.Contains(err.Error(), "001_t.sql") {
		t.Fatalf("renamed: %v", err)
	}
}
