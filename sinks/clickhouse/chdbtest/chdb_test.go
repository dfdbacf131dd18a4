package chdbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chdb-io/chdb-go/chdb"
	"go.uber.org/goleak"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
	"github.com/winback/winback/sinks/clickhouse/chdbtest/chdbenv"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
)

// session is the process's one chDB session (chDB allows one at a time).
var session *chdb.Session

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "winback-chdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	session, err = chdb.NewSession(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: chDB session with %s: %v\n", os.Getenv(chdbenv.EnvLibPath), err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	session.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// executor runs SQL in the chDB session (chsql.Executor).
type executor struct{}

func (executor) Exec(_ context.Context, q string) error {
	res, err := session.Query(q, "TabSeparated")
	if err != nil {
		return fmt.Errorf("chdb: %w", err)
	}
	res.Free()
	return nil
}

func (executor) Query(_ context.Context, q string) ([][]string, error) {
	res, err := session.Query(q, "TabSeparated")
	if err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	defer res.Free()
	return parseTSV(res.String()), nil
}

// parseTSV splits TabSeparated output into rows of unescaped values; NULL
// stays \N.
func parseTSV(s string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		for i, f := range fields {
			if f != `\N` {
				fields[i] = strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\\`, `\`, `\'`, "'").Replace(f)
			}
		}
		rows = append(rows, fields)
	}
	return rows
}

func exec(t *testing.T, q string) {
	t.Helper()
	if err := (executor{}).Exec(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func query(t *testing.T, q string) [][]string {
	t.Helper()
	rows, err := executor{}.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func count(t *testing.T, q string) int {
	t.Helper()
	rows := query(t, q)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: %v, want one value", q, rows)
	}
	n, err := strconv.Atoi(rows[0][0])
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func engineVersion(t *testing.T) chsql.Version {
	t.Helper()
	v, err := chsql.ParseVersion(query(t, "SELECT version()")[0][0])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var dbSeq atomic.Int64

// migrate creates a fresh database with the migrations rendered for
// features (the engine's own, or an older server's).
func migrate(t *testing.T, activeDays int, features chsql.Features) chsql.Params {
	t.Helper()
	p := chsql.Params{
		Database:   fmt.Sprintf("wbchdb_%d", dbSeq.Add(1)),
		ActiveDays: activeDays,
		Server:     engineVersion(t),
		Features:   features,
	}
	ran, err := chsql.Apply(t.Context(), executor{}, schemas.ClickHouseMigrations(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) < 10 {
		t.Fatalf("ran only %v", ran)
	}
	return p
}

// writer batches rows like the sink and writes them with INSERT ... VALUES.
type writer struct {
	t      *testing.T
	p      chsql.Params
	b      *chsql.Batch
	now    time.Time
	tokens bool
}

func newWriter(t *testing.T, p chsql.Params) *writer {
	return &writer{t: t, p: p, b: chsql.NewBatch(0), now: time.Date(2024, 4, 1, 12, 0, 0, 0, time.UTC), tokens: p.Features.InsertDedupToken}
}

func (w *writer) flush() {
	w.t.Helper()
	for _, table := range w.b.Build(w.now, w.tokens) {
		exec(w.t, chtest.ValuesSQL(table, w.p.Database, table.Settings()))
	}
	w.b = chsql.NewBatch(0)
}

// writeFixture writes the dataset as TestViews does on 18.16: in small
// batches, then a reversed replay, then stale versions alone.
func writeFixture(t *testing.T, p chsql.Params, fx *chtest.Fixture) {
	w := newWriter(t, p)
	for i := range fx.Aggregates {
		w.b.AddAggregate(&fx.Aggregates[i])
		if (i+1)%4 == 0 {
			w.flush()
		}
	}
	for i := range fx.Triggers {
		w.b.AddTrigger(&fx.Triggers[i])
	}
	for i := range fx.DeadLetters {
		w.b.AddDeadLetter(&fx.DeadLetters[i])
	}
	w.flush()
	rev := slices.Clone(fx.Aggregates)
	slices.Reverse(rev)
	for i := range rev {
		w.b.AddAggregate(&rev[i])
	}
	for i := range fx.Triggers {
		tr := fx.Triggers[i]
		tr.EmittedAt += 1000
		w.b.AddTrigger(&tr)
	}
	w.flush()
	for i := range fx.Aggregates {
		if a := fx.Aggregates[i]; a.Version == 1 {
			w.b.AddAggregate(&a)
		}
	}
	w.flush()
}

func loadFixture(t *testing.T) *chtest.Fixture {
	t.Helper()
	fx, err := chtest.Load("../testdata/views.txt")
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestLibraryLocated: chdbenv set CHDB_LIB_PATH before chdb-go loaded the
// library, and the library is a modern ClickHouse.
func TestLibraryLocated(t *testing.T) {
	lib := os.Getenv(chdbenv.EnvLibPath)
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := chdbenv.Locate(os.Getenv, dir); lib == "" || p != lib || err != nil {
		t.Fatalf("%s=%q, Locate gives %q, %v", chdbenv.EnvLibPath, lib, p, err)
	}
	v := engineVersion(t)
	f := chsql.FeaturesOf(v)
	if !f.InsertDedupToken || !f.LowCardinality {
		t.Fatalf("chDB is ClickHouse %s, features %+v: too old to prove the modern branch", v, f)
	}
	t.Logf("chDB: ClickHouse %s from %s", v, lib)
}

// TestViewsModern: the same migrations (rendered for this engine) and the
// same dataset give the numbers worked out by hand, as on 18.16.
func TestViewsModern(t *testing.T) {
	fx := loadFixture(t)
	p := migrate(t, fx.ActiveDays, chsql.FeaturesOf(engineVersion(t)))
	for _, table := range chsql.Tables {
		exec(t, "SYSTEM STOP MERGES "+p.Database+"."+table)
	}
	// The version-gated DDL took the modern branch.
	ddl := query(t, "SELECT create_table_query FROM system.tables WHERE database = '"+p.Database+"' AND name = 'customer_aggregates'")[0][0]
	if !strings.Contains(ddl, "LowCardinality(String)") || !strings.Contains(ddl, "non_replicated_deduplication_window = 1000") {
		t.Fatalf("customer_aggregates DDL lacks the modern branch:\n%s", ddl)
	}
	checkViews(t, p, fx)
}

// TestViewsOldDDLOnModern: the DDL as rendered for 18.16 also runs on the
// modern engine (a server upgraded under existing tables) and gives the
// same numbers.
func TestViewsOldDDLOnModern(t *testing.T) {
	fx := loadFixture(t)
	old, err := chsql.ParseVersion("18.16.1")
	if err != nil {
		t.Fatal(err)
	}
	p := migrate(t, fx.ActiveDays, chsql.FeaturesOf(old))
	ddl := query(t, "SELECT create_table_query FROM system.tables WHERE database = '"+p.Database+"' AND name = 'customer_aggregates'")[0][0]
	if strings.Contains(ddl, "LowCardinality") || strings.Contains(ddl, "non_replicated_deduplication_window") {
		t.Fatalf("18.16 rendering has modern DDL:\n%s", ddl)
	}
	for _, table := range chsql.Tables {
		exec(t, "SYSTEM STOP MERGES "+p.Database+"."+table)
	}
	checkViews(t, p, fx)
}

func checkViews(t *testing.T, p chsql.Params, fx *chtest.Fixture) {
	t.Helper()
	writeFixture(t, p, fx)
	if n, final := count(t, "SELECT count() FROM "+p.Database+".customer_daily"),
		count(t, "SELECT count() FROM "+p.Database+".customer_daily FINAL"); n <= final {
		t.Fatalf("customer_daily: %d rows, %d under FINAL: no duplicates to resist", n, final)
	}
	for _, e := range fx.Expects {
		t.Run(e.Name, func(t *testing.T) {
			if err := chtest.Compare(query(t, e.SQL(p.Database)), e.Rows); err != nil {
				t.Errorf("testdata/views.txt:%d: %s", e.Line, err)
			}
		})
	}
	t.Run("docs", func(t *testing.T) {
		qs, err := chtest.DocQueries("../../../docs/clickhouse.md", p.Database)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			query(t, q)
		}
	})
	t.Run("weekly", func(t *testing.T) {
		retention, kpi := fx.Weekly()
		if err := chtest.Compare(query(t, chtest.Expect{Query: chtest.WeeklyRetentionQuery}.SQL(p.Database)), retention); err != nil {
			t.Errorf("retention_weekly: %v", err)
		}
		if err := chtest.Compare(query(t, chtest.Expect{Query: chtest.WeeklyKPIQuery}.SQL(p.Database)), kpi); err != nil {
			t.Errorf("kpi_weekly: %v", err)
		}
	})
}

// TestInsertDedupToken: on the modern engine, a batch written again with
// the same insert_deduplication_token is dropped at insert time, even
// though its updated_at differs (as in a replay); another token is not.
// Without the table's non_replicated_deduplication_window (the DDL as
// rendered for 18.16) the token does nothing, and Migrate adds the window
// when the server is upgraded.
func TestInsertDedupToken(t *testing.T) {
	fx := loadFixture(t)
	modern := chsql.FeaturesOf(engineVersion(t))

	build := func(at time.Time) *chsql.Table {
		b := chsql.NewBatch(0)
		for i := range fx.Aggregates {
			b.AddAggregate(&fx.Aggregates[i])
		}
		return b.Build(at, true)[0]
	}
	first := build(time.Date(2024, 4, 1, 12, 0, 0, 0, time.UTC))
	replay := build(time.Date(2024, 4, 1, 13, 0, 0, 0, time.UTC))
	if first.Name != chsql.TableAggregates || first.Token == "" || first.Token != replay.Token {
		t.Fatalf("tokens %q and %q for the same content", first.Token, replay.Token)
	}
	insert := func(p chsql.Params, tb *chsql.Table, token string) int {
		settings := tb.Settings()
		settings["insert_deduplication_token"] = token
		exec(t, chtest.ValuesSQL(tb, p.Database, settings))
		return count(t, "SELECT count() FROM "+p.Database+"."+tb.Name)
	}

	p := migrate(t, 90, modern)
	exec(t, "SYSTEM STOP MERGES "+p.Database+"."+first.Name)
	// The batch has a row per customer-day; the modern engine collapses
	// a customer's rows within one insert already (optimize_on_insert),
	// so n is what one insert stores.
	n := insert(p, first, first.Token)
	if customers := count(t, "SELECT uniqExact(customer_id) FROM "+p.Database+"."+first.Name); n < customers || n > first.Rows || customers == 0 {
		t.Fatalf("first insert: %d rows of %d customer-days, %d customers", n, first.Rows, customers)
	}
	// customer_daily_feed sees the block as inserted: every customer-day.
	if days := count(t, "SELECT uniqExact(customer_id, day) FROM "+p.Database+".customer_daily"); days != first.Rows {
		t.Fatalf("customer_daily has %d customer-days, want %d", days, first.Rows)
	}
	if got := insert(p, replay, replay.Token); got != n {
		t.Fatalf("replay with the same token: %d rows, want %d (deduplicated)", got, n)
	}
	if got := query(t, "SELECT DISTINCT toString(updated_at) FROM "+p.Database+"."+first.Name); len(got) != 1 || got[0][0] != "2024-04-01 12:00:00" {
		t.Fatalf("updated_at %v: the replay's rows were stored", got)
	}
	if got := insert(p, replay, "another token"); got != 2*n {
		t.Fatalf("another token: %d rows, want %d (not deduplicated)", got, 2*n)
	}

	// The 18.16 rendering has no window: the token does not deduplicate.
	old, _ := chsql.ParseVersion("18.16.1")
	po := migrate(t, 90, chsql.FeaturesOf(old))
	exec(t, "SYSTEM STOP MERGES "+po.Database+"."+first.Name)
	if got := insert(po, first, first.Token); got != n {
		t.Fatalf("first insert without the window: %d rows, want %d", got, n)
	}
	if got := insert(po, replay, replay.Token); got != 2*n {
		t.Fatalf("without the window: %d rows, want %d", got, 2*n)
	}

	// The server is upgraded: migrating again with the modern features
	// re-runs what renders differently, 005 adds the window, and from then
	// on the token deduplicates.
	po.Features = modern
	ran, err := chsql.Apply(t.Context(), executor{}, schemas.ClickHouseMigrations(), po, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ran, "005_dedup_window.sql") {
		t.Fatalf("upgrade ran %v, want 005_dedup_window.sql among them", ran)
	}
	again, err := chsql.Apply(t.Context(), executor{}, schemas.ClickHouseMigrations(), po, nil)
	if err != nil || len(again) != 0 {
		t.Fatalf("second apply after the upgrade ran %v, %v", again, err)
	}
	other := build(time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC))
	before := count(t, "SELECT count() FROM "+po.Database+"."+first.Name)
	insert(po, other, "upgrade")
	if got := insert(po, other, "upgrade"); got != before+n {
		t.Fatalf("after the upgrade: %d rows, want %d", got, before+n)
	}
}

// TestDailyFeedRetry: an insert that stored its block in
// customer_aggregates but not through customer_daily_feed (here: the view
// detached, as when its part of the insert failed) and is retried with the
// same token fills customer_daily, because the sink's insert settings ask
// the views to deduplicate by themselves; a retry of a complete insert
// adds nothing to either table. (Servers before 25 drop such a retry at the
// source and never run the view unless the setting is on; ClickHouse 26,
// the engine here, runs the view either way, so only the outcome is
// asserted.)
func TestDailyFeedRetry(t *testing.T) {
	fx := loadFixture(t)
	b := chsql.NewBatch(0)
	for i := range fx.Aggregates {
		b.AddAggregate(&fx.Aggregates[i])
	}
	tb := b.Build(time.Date(2024, 4, 1, 12, 0, 0, 0, time.UTC), true)[0]
	days := func(p chsql.Params) int {
		return count(t, "SELECT count() FROM "+p.Database+".customer_daily")
	}
	p := migrate(t, 90, chsql.FeaturesOf(engineVersion(t)))
	exec(t, "SYSTEM STOP MERGES "+p.Database+".customer_daily")
	// The first attempt stores the block in customer_aggregates only.
	exec(t, "DETACH TABLE "+p.Database+".customer_daily_feed")
	exec(t, chtest.ValuesSQL(tb, p.Database, tb.Settings()))
	exec(t, "ATTACH TABLE "+p.Database+".customer_daily_feed")
	if n := days(p); n != 0 {
		t.Fatalf("customer_daily has %d rows with the view detached", n)
	}
	exec(t, chtest.ValuesSQL(tb, p.Database, tb.Settings()))
	if n := days(p); n != tb.Rows {
		t.Fatalf("after the retry customer_daily has %d rows, want %d", n, tb.Rows)
	}
	exec(t, chtest.ValuesSQL(tb, p.Database, tb.Settings()))
	if n := days(p); n != tb.Rows {
		t.Fatalf("after a second retry customer_daily has %d rows, want %d (deduplicated)", n, tb.Rows)
	}
}

// TestMigrateTwiceModern: on the modern engine too, a second apply is a
// no-op and an edited applied file is refused.
func TestMigrateTwiceModern(t *testing.T) {
	p := migrate(t, 90, chsql.FeaturesOf(engineVersion(t)))
	ran, err := chsql.Apply(t.Context(), executor{}, schemas.ClickHouseMigrations(), p, nil)
	if err != nil || len(ran) != 0 {
		t.Fatalf("second apply ran %v, %v; want nothing", ran, err)
	}
	files, err := fs.Glob(schemas.ClickHouseMigrations(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, "SELECT count() FROM "+p.Database+".schema_migrations"); n != len(files) {
		t.Fatalf("schema_migrations has %d rows, want one per file (%d)", n, len(files))
	}
	// An edited applied file is refused, naming it.
	edited := fstest.MapFS{}
	for _, name := range files {
		b, _ := fs.ReadFile(schemas.ClickHouseMigrations(), name)
		if name == "001_customer_aggregates.sql" {
			b = bytes.Replace(b, []byte("ORDER BY customer_id"), []byte("ORDER BY (customer_id, version)"), 1)
		}
		edited[name] = &fstest.MapFile{Data: b}
	}
	_, err = chsql.Apply(t.Context(), executor{}, edited, p, nil)
	var ce *chsql.ChecksumError
	if !errors.As(err, &ce) || ce.File != "001_customer_aggregates.sql" {
		t.Fatalf("edited migration: %v, want a checksum error for 001_customer_aggregates.sql", err)
	}
}

// TestEraseModern: on a modern engine the erasure is a lightweight
// DELETE FROM on every table holding the customer, customer_daily
// included, and rows written after it stay; an evicted row (version 0)
// is the customer's only row once its earlier ones are deleted, and the
// current-state views leave it out.
func TestEraseModern(t *testing.T) {
	p := migrate(t, 90, chsql.FeaturesOf(engineVersion(t)))
	if !p.Features.LightweightDelete {
		t.Fatalf("engine %s: no lightweight delete", p.Server)
	}
	db := p.Database
	w := newWriter(t, p)
	for _, id := range []string{"gone", "stays", "old"} {
		a := event.Aggregate{CustomerID: id, Version: 3, AsOf: w.now.Add(-48 * time.Hour).UnixMilli(), OrdersTotal: 2, RiskScore: 0.9, ValueTier: event.TierHigh, LastCSAT: event.NoScore, LastNPS: event.NoScore}
		w.b.AddAggregate(&a)
		w.b.AddTrigger(&event.Trigger{TriggerID: "t-" + id, CustomerID: id, Kind: event.TriggerWinback, AsOf: a.AsOf, EmittedAt: w.now.UnixMilli()})
	}
	w.b.AddDeadLetter(&event.DeadLetter{Topic: "orders", Offset: 1, Key: []byte("x"), Sample: []byte(`{"customer_id":"gone"`), At: w.now.UnixMilli()})
	w.b.AddDeadLetter(&event.DeadLetter{Topic: "orders", Offset: 2, Key: []byte("stays"), At: w.now.UnixMilli()})
	w.flush()
	for _, e := range chsql.Erasable {
		exec(t, chsql.DeleteSQL(db, e.Table, e.Where, []string{"gone"}, true))
	}
	ev := event.Aggregate{CustomerID: "old", Version: 0, Evicted: true, AsOf: w.now.Add(-48 * time.Hour).UnixMilli(), OrdersTotal: 2, RiskScore: 0.9, ValueTier: event.TierHigh, LastCSAT: event.NoScore, LastNPS: event.NoScore}
	exec(t, chsql.DeleteSQL(db, chsql.TableAggregates, chsql.WhereCustomer, []string{"old"}, true))
	w.b.AddAggregate(&ev)
	w.flush()
	for q, want := range map[string]int{
		"SELECT count() FROM " + db + ".customer_aggregates WHERE customer_id = 'gone'":                                      0,
		"SELECT count() FROM " + db + ".customer_daily WHERE customer_id = 'gone'":                                           0,
		"SELECT count() FROM " + db + ".winback_triggers WHERE customer_id = 'gone'":                                         0,
		"SELECT count() FROM " + db + ".dlq_records":                                                                         1,
		"SELECT count() FROM " + db + ".customer_aggregates FINAL WHERE customer_id = 'old' AND evicted = 1 AND version = 0": 1,
		"SELECT count() FROM " + db + ".customers_at_risk":                                                                   1,
		"SELECT count() FROM " + db + ".customer_aggregates FINAL":                                                           2,
	} {
		if got := count(t, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestIncrementalityModern: the incrementality views give the hand-checked
// rows of testdata/incrementality.txt on the modern engine too (written
// twice, merges stopped, as on 18.16).
func TestIncrementalityModern(t *testing.T) {
	fx, err := chtest.Load("../testdata/incrementality.txt")
	if err != nil {
		t.Fatal(err)
	}
	p := migrate(t, fx.ActiveDays, chsql.FeaturesOf(engineVersion(t)))
	for _, table := range chsql.Tables {
		exec(t, "SYSTEM STOP MERGES "+p.Database+"."+table)
	}
	writeFixture(t, p, fx)
	if n, final := count(t, "SELECT count() FROM "+p.Database+".winback_triggers"),
		count(t, "SELECT count() FROM "+p.Database+".winback_triggers FINAL"); n <= final {
		t.Fatalf("winback_triggers: %d rows, %d under FINAL: no duplicates to resist", n, final)
	}
	if len(fx.Expects) < 4 {
		t.Fatalf("only %d expectations", len(fx.Expects))
	}
	for _, e := range fx.Expects {
		t.Run(e.Name, func(t *testing.T) {
			if err := chtest.Compare(query(t, e.SQL(p.Database)), e.Rows); err != nil {
				t.Errorf("testdata/incrementality.txt:%d: %s", e.Line, err)
			}
		})
	}
	t.Run("grafana", func(t *testing.T) {
		qs, err := chtest.DashboardQueries("../../../deploy/grafana/incrementality.json", p.Database)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if rows := query(t, q); len(rows) == 0 {
				t.Errorf("no rows from\n%s", q)
			}
		}
	})
}
