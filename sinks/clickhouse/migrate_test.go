package clickhouse

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/winback/winback/schemas"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
	"github.com/winback/winback/testenv"
)

func migrationNames(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(schemas.ClickHouseMigrations(), "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	return names
}

func TestMigrate(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s, _ := openSink(t, ch, Config{ActiveDays: 30})
	ctx := testCtx(t, 2*time.Minute)
	db := s.cfg.Database
	if s.ServerVersion() == "" {
		t.Fatal("no server version")
	}

	ran, err := chsql.Apply(ctx, executor{s.conn}, schemas.ClickHouseMigrations(), s.migrationParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	files := migrationNames(t)
	if !slices.Equal(ran, files) {
		t.Fatalf("first apply ran %v, want every file %v", ran, files)
	}

	wantTables := []string{"customer_aggregates", "customer_daily", "customer_history_state", "dlq_records", "schema_lock", "schema_migrations", "trigger_outcome_state", "winback_triggers"}
	wantViews := []string{"customer_days", "customer_history", "customer_kpis", "customer_months", "customer_weeks", "customers_at_risk",
		"engagement_by_tier", "kpi_monthly", "kpi_weekly", "retention_monthly", "retention_weekly",
		"support_by_tier", "value_risk_matrix", "winback_funnel", "winback_incrementality", "winback_incrementality_by_reason",
		"winback_trigger_outcomes"}
	wantFeeds := []string{"customer_daily_feed", "customer_history_feed", "trigger_outcome_days_feed", "trigger_outcome_triggers_feed"}
	var gotTables, gotViews, gotFeeds []string
	for _, r := range query(t, s, "SELECT name, engine FROM system.tables WHERE database = '"+db+"' ORDER BY name") {
		switch r[1] {
		case "View":
			gotViews = append(gotViews, r[0])
		case "MaterializedView":
			gotFeeds = append(gotFeeds, r[0])
		default:
			gotTables = append(gotTables, r[0])
		}
	}
	if !slices.Equal(gotTables, wantTables) || !slices.Equal(gotViews, wantViews) || !slices.Equal(gotFeeds, wantFeeds) {
		t.Fatalf("tables %v views %v materialized views %v\nwant tables %v views %v materialized views %v",
			gotTables, gotViews, gotFeeds, wantTables, wantViews, wantFeeds)
	}
	// Every view answers on empty tables.
	for _, v := range wantViews {
		query(t, s, "SELECT * FROM "+db+"."+v)
	}

	ledger := "SELECT version, name, checksum, rendered_checksum, params, applied_at, seq FROM " + db + ".schema_migrations ORDER BY version, seq"
	before := query(t, s, ledger)
	if len(before) != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d", len(before), len(files))
	}
	for _, r := range before {
		if !strings.Contains(r[4], "active_days=30") {
			t.Fatalf("params %q do not record active_days=30", r[4])
		}
	}

	// Twice: nothing runs, nothing is recorded.
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ran, err = chsql.Apply(ctx, executor{s.conn}, schemas.ClickHouseMigrations(), s.migrationParams(), nil)
	if err != nil || len(ran) != 0 {
		t.Fatalf("second apply ran %v, %v; want nothing", ran, err)
	}
	if after := query(t, s, ledger); join(after) != join(before) {
		t.Fatalf("schema_migrations changed on a no-op apply:\n%s\nwas:\n%s", join(after), join(before))
	}

	// Another activity window re-creates exactly the views it is rendered
	// into, and the ledger records it.
	p := s.migrationParams()
	p.ActiveDays = 45
	ran, err = chsql.Apply(ctx, executor{s.conn}, schemas.ClickHouseMigrations(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"011_customer_months.sql", "012_customer_weeks.sql", "062_customer_history_days.sql", "071_views_on_history_state.sql"}; !slices.Equal(ran, want) {
		t.Fatalf("active_days 45 ran %v, want %v", ran, want)
	}
	if got := query(t, s, "SELECT argMax(params, seq) FROM "+db+".schema_migrations WHERE version = 11"); !strings.Contains(got[0][0], "active_days=45") {
		t.Fatalf("ledger params %q, want active_days=45", got[0][0])
	}
	if got := query(t, s, "SELECT create_table_query FROM system.tables WHERE database = '"+db+"' AND name = 'customer_months'"); !strings.Contains(got[0][0], "45") {
		t.Fatalf("customer_months not re-rendered: %s", got[0][0])
	}

	// A changed file of an applied migration is an error naming it, and
	// nothing runs.
	tampered := fstest.MapFS{}
	for _, name := range files {
		b, err := fs.ReadFile(schemas.ClickHouseMigrations(), name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "013_retention_monthly.sql" {
			b = append(b, "\n-- an innocent comment\n"...)
		}
		tampered[name] = &fstest.MapFile{Data: b}
	}
	tampered["099_new.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE {{.DB}}.must_not_exist (x UInt8) ENGINE = Memory;")}
	_, err = chsql.Apply(ctx, executor{s.conn}, tampered, p, nil)
	var ce *MigrationChecksumError
	if !errors.As(err, &ce) || ce.File != "013_retention_monthly.sql" || !strings.Contains(err.Error(), "013_retention_monthly.sql") {
		t.Fatalf("tampered migration: got %v, want a checksum error naming 013_retention_monthly.sql", err)
	}
	if n := count(t, s, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND name = 'must_not_exist'"); n != 0 {
		t.Fatal("a migration ran after a checksum error")
	}
}

func TestMigrateBadDatabase(t *testing.T) {
	_, err := chsql.Apply(t.Context(), nil, schemas.ClickHouseMigrations(), chsql.Params{Database: "x; DROP", ActiveDays: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "identifier") {
		t.Fatalf("got %v, want an identifier error", err)
	}
}
