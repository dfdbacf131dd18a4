package chsql

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/winback/winback/pipeline/event"
)

// Executor runs SQL on a ClickHouse: a server through clickhouse-go, or
// chDB in process.
type Executor interface {
	// Exec runs one statement that returns no rows.
	Exec(ctx context.Context, query string) error
	// Query runs one SELECT and returns its rows, each value as text
	// (NULL as \N).
	Query(ctx context.Context, query string) ([][]string, error)
}

// DefaultDedupWindow is how many recent insert blocks a table remembers
// for insert deduplication, where the server supports it.
const DefaultDedupWindow = 1000

// Params are the values the migration templates are rendered with.
type Params struct {
	// Database holds every table and view; a plain identifier.
	Database string
	// ActiveDays: a customer is active if they ordered within this many
	// days (the retention views).
	ActiveDays int
	// Server is the server's version, recorded in the ledger.
	Server Version
	// Features select the version-dependent DDL.
	Features Features
	// DedupWindow is non_replicated_deduplication_window where
	// Features.InsertDedupToken holds; 0 means DefaultDedupWindow.
	DedupWindow int
	// Cluster renders the migrations for a cluster of shards (cluster.go);
	// the zero value is one node.
	Cluster Cluster
	// Lock tunes the lock Apply takes before it runs a migration.
	Lock LockOptions
	// TTL is how long ClickHouse keeps rows, where Features.TTL holds.
	TTL TTL
}

// TTL says how many days of rows ClickHouse keeps per table, counted
// from a day in each row; 0 keeps them forever. Applied only where the
// server has table TTLs (Features.TTL); on 18.16 they are ignored.
type TTL struct {
	// DailyDays: customer_daily rows, from their day.
	DailyDays int
	// TriggerDays: winback_triggers rows, from as_of.
	TriggerDays int
	// DeadLetterDays: dlq_records rows, from at (when dead-lettered).
	DeadLetterDays int
}

// Set reports whether any table has a TTL.
func (t TTL) Set() bool { return t.DailyDays > 0 || t.TriggerDays > 0 || t.DeadLetterDays > 0 }

// tmplData is what the .sql templates see.
type tmplData struct {
	DB          string
	ActiveDays  int
	String      string // LowCardinality(String) or String
	DedupWindow int    // 0: not supported
	// The lowest risk scores of the HIGH and MEDIUM risk bands
	// (event.RiskHighMin, event.RiskMediumMin).
	RiskHigh, RiskMedium float64
	// TTLs in days (0: none, and always 0 without Features.TTL).
	TTLDaily, TTLTriggers, TTLDeadLetters int
}

func (p Params) data() tmplData {
	d := tmplData{DB: p.Database, ActiveDays: p.ActiveDays, String: "String",
		RiskHigh: event.RiskHighMin, RiskMedium: event.RiskMediumMin}
	if p.Features.LowCardinality {
		d.String = "LowCardinality(String)"
	}
	if p.Features.TTL {
		d.TTLDaily, d.TTLTriggers, d.TTLDeadLetters = p.TTL.DailyDays, p.TTL.TriggerDays, p.TTL.DeadLetterDays
	}
	if p.Features.InsertDedupToken {
		d.DedupWindow = p.DedupWindow
		if d.DedupWindow <= 0 {
			d.DedupWindow = DefaultDedupWindow
		}
	}
	return d
}

// String is the template values as recorded in schema_migrations.params.
func (p Params) String() string {
	d := p.data()
	s := fmt.Sprintf("active_days=%d string=%s dedup_window=%d", d.ActiveDays, d.String, d.DedupWindow)
	if p.Cluster.Name != "" {
		s += fmt.Sprintf(" cluster=%s replicated=%t", p.Cluster.Name, p.Cluster.Replicated)
	}
	if d.TTLDaily > 0 || d.TTLTriggers > 0 || d.TTLDeadLetters > 0 {
		s += fmt.Sprintf(" ttl_days=daily:%d,triggers:%d,dead_letters:%d", d.TTLDaily, d.TTLTriggers, d.TTLDeadLetters)
	}
	return s
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidDatabase reports whether name can be used as the database name
// unquoted.
func ValidDatabase(name string) bool { return identRE.MatchString(name) }

func (p Params) validate() error {
	if !ValidDatabase(p.Database) {
		return fmt.Errorf("chsql: database %q is not a plain identifier (letters, digits, _)", p.Database)
	}
	if p.ActiveDays < 1 {
		return fmt.Errorf("chsql: active days %d: must be at least 1", p.ActiveDays)
	}
	if p.Cluster.Name != "" && !ValidCluster(p.Cluster.Name) {
		return fmt.Errorf("chsql: cluster %q is not a plain identifier (letters, digits, _)", p.Cluster.Name)
	}
	if p.Cluster.Replicated && p.Cluster.Name == "" {
		return errors.New("chsql: replicated tables need a cluster name")
	}
	if p.TTL.DailyDays < 0 || p.TTL.TriggerDays < 0 || p.TTL.DeadLetterDays < 0 {
		return fmt.Errorf("chsql: TTL %+v: days must be 0 (keep) or positive", p.TTL)
	}
	return nil
}

// Migration is one NNN_name.sql file, rendered.
type Migration struct {
	Version          uint32
	Name             string // the file name, e.g. 013_retention_monthly.sql
	Checksum         string // sha256 of the file, hex
	SQL              string // the rendered text
	RenderedChecksum string // sha256 of SQL, hex
	Statements       []string
	// Everywhere, in cluster mode, marks the statements that run on every
	// node (DDL); the others run once. Nil on one node.
	Everywhere []bool
}

var fileRE = regexp.MustCompile(`^(\d{3})_[a-z0-9_]+\.sql$`)

// Load reads the migrations at the root of fsys (NNN_name.sql, NNN unique,
// 000 first) and renders them with p.
func Load(fsys fs.FS, p Params) ([]Migration, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("chsql: read migrations: %w", err)
	}
	var ms []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		sub := fileRE.FindStringSubmatch(e.Name())
		if sub == nil {
			return nil, fmt.Errorf("chsql: migration %s: name must be NNN_lowercase_name.sql", e.Name())
		}
		v, _ := strconv.ParseUint(sub[1], 10, 32)
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("chsql: migrations %s and %s have the same version %s", other, e.Name(), sub[1])
		}
		seen[uint32(v)] = e.Name()
		raw, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("chsql: migration %s: %w", e.Name(), err)
		}
		m, err := render(e.Name(), uint32(v), raw, p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	if len(ms) == 0 || ms[0].Version != 0 {
		return nil, errors.New("chsql: migrations must start with 000_*.sql, which creates the database and schema_migrations")
	}
	if p.Cluster.Name != "" {
		if err := clusterize(ms, p.Cluster, p.Database); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

func render(name string, version uint32, raw []byte, p Params) (Migration, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return Migration{}, fmt.Errorf("chsql: migration %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p.data()); err != nil {
		return Migration{}, fmt.Errorf("chsql: migration %s: %w", name, err)
	}
	return Migration{
		Version:          version,
		Name:             name,
		Checksum:         checksum(raw),
		SQL:              buf.String(),
		RenderedChecksum: checksum(buf.Bytes()),
		Statements:       Split(buf.String()),
	}, nil
}

func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ChecksumError says a migration file was changed after it was applied.
type ChecksumError struct {
	File            string // the migration's file name
	AppliedName     string // the file name recorded when it was applied
	AppliedChecksum string
	FileChecksum    string
}

func (e *ChecksumError) Error() string {
	if e.AppliedName != e.File {
		return fmt.Sprintf("clickhouse migration %s: version already applied as %s; give the new file a new version number", e.File, e.AppliedName)
	}
	return fmt.Sprintf("clickhouse migration %s was changed after it was applied (checksum applied %.12s, file %.12s): restore the file and put the change in a new migration", e.File, e.AppliedChecksum, e.FileChecksum)
}

type applied struct {
	name, checksum, rendered string
}

// ClusterExecutor is an Executor that also reaches every node of the
// cluster: it runs a statement with ON CLUSTER (OnCluster) where the
// servers have ZooKeeper, else on each node in turn. Apply needs one in
// cluster mode.
type ClusterExecutor interface {
	Executor
	ExecEverywhere(ctx context.Context, query string) error
}

// Apply brings the database up to the migrations in fsys:
//
//   - 000 runs every time (it creates the database and the ledger,
//     idempotently);
//   - a migration not yet in schema_migrations runs and is recorded;
//   - an applied migration whose file changed is an error (*ChecksumError)
//     naming the file, before anything else runs;
//   - an applied migration whose rendered text changed (another
//     ActiveDays, a server upgrade that enables a feature) runs again and
//     is recorded again: every migration is idempotent (CREATE ... IF NOT
//     EXISTS, DROP + CREATE VIEW, ALTER ... MODIFY SETTING);
//   - otherwise nothing happens, so applying twice is a no-op.
//
// When something is to run, Apply first takes the migration lock
// (lock.go), so that of several instances starting together one runs the
// migrations and the others wait for it, then find nothing left to do.
//
// It returns the names of the migrations it ran (000 only when it was
// recorded anew).
func Apply(ctx context.Context, ex Executor, fsys fs.FS, p Params, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ms, err := Load(fsys, p)
	if err != nil {
		return nil, err
	}
	for i := range ms[0].Statements {
		if err := execStmt(ctx, ex, p, ms[0], i); err != nil {
			return nil, fmt.Errorf("clickhouse migration %s: statement %d: %w", ms[0].Name, i+1, err)
		}
	}
	todo, _, err := pending(ctx, ex, p, ms)
	if err != nil || len(todo) == 0 {
		return nil, err
	}
	lock, err := acquireLock(ctx, ex, p, log)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	// Again under the lock: another instance may have run them meanwhile.
	todo, done, err := pending(ctx, ex, p, ms)
	if err != nil {
		return nil, err
	}
	var ran []string
	for _, m := range todo {
		if m.Version != 0 {
			for i := range m.Statements {
				if err := execStmt(ctx, ex, p, m, i); err != nil {
					return ran, fmt.Errorf("clickhouse migration %s: statement %d: %w", m.Name, i+1, err)
				}
			}
		}
		now := time.Now().UTC()
		// INSERT ... SELECT, not VALUES: over the native protocol an
		// INSERT with VALUES in an Exec waits for data blocks on 18.16.
		rec := fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name, checksum, rendered_checksum, params, server_version, applied_at, seq) SELECT %d, %s, %s, %s, %s, %s, toDateTime(%s, 'UTC'), %d",
			p.Database, m.Version, Quote(m.Name), Quote(m.Checksum), Quote(m.RenderedChecksum),
			Quote(p.String()), Quote(p.Server.String()), Quote(now.Format(time.DateTime)), now.UnixNano())
		if err := ex.Exec(ctx, rec); err != nil {
			return ran, fmt.Errorf("clickhouse migration %s: record: %w", m.Name, err)
		}
		why := "new"
		if _, ok := done[m.Version]; ok {
			why = "rendered text changed"
		}
		log.Info("clickhouse migration applied", "migration", m.Name, "why", why, "statements", len(m.Statements), "params", p.String())
		ran = append(ran, m.Name)
	}
	return ran, nil
}

// execStmt runs statement i of m: on every node in cluster mode when it
// is marked Everywhere, else once.
func execStmt(ctx context.Context, ex Executor, p Params, m Migration, i int) error {
	return execScoped(ctx, ex, p, m.Statements[i], m.Everywhere != nil && m.Everywhere[i])
}

func execScoped(ctx context.Context, ex Executor, p Params, st string, everywhere bool) error {
	if p.Cluster.Name == "" || !everywhere {
		return ex.Exec(ctx, st)
	}
	ce, ok := ex.(ClusterExecutor)
	if !ok {
		return fmt.Errorf("chsql: cluster %s: the executor cannot reach every node", p.Cluster.Name)
	}
	return ce.ExecEverywhere(ctx, st)
}

// pending reads the ledger and returns the migrations to run, in order,
// and what the ledger holds; an applied file that changed is an error.
func pending(ctx context.Context, ex Executor, p Params, ms []Migration) ([]Migration, map[uint32]applied, error) {
	rows, err := ex.Query(ctx, fmt.Sprintf(
		"SELECT toString(version), argMax(name, seq), argMax(checksum, seq), argMax(rendered_checksum, seq) FROM %s.schema_migrations GROUP BY version",
		p.Database))
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse migrations: read %s.schema_migrations: %w", p.Database, err)
	}
	done := map[uint32]applied{}
	for _, r := range rows {
		if len(r) != 4 {
			return nil, nil, fmt.Errorf("clickhouse migrations: schema_migrations row has %d columns, want 4", len(r))
		}
		v, err := strconv.ParseUint(r[0], 10, 32)
		if err != nil {
			return nil, nil, fmt.Errorf("clickhouse migrations: schema_migrations version %q: %w", r[0], err)
		}
		done[uint32(v)] = applied{name: r[1], checksum: r[2], rendered: r[3]}
	}
	// Refuse before running anything if an applied file was edited.
	for _, m := range ms {
		if a, ok := done[m.Version]; ok && (a.name != m.Name || a.checksum != m.Checksum) {
			return nil, nil, &ChecksumError{File: m.Name, AppliedName: a.name, AppliedChecksum: a.checksum, FileChecksum: m.Checksum}
		}
	}
	var todo []Migration
	for _, m := range ms {
		if a, ok := done[m.Version]; !ok || a.rendered != m.RenderedChecksum {
			todo = append(todo, m)
		}
	}
	return todo, done, nil
}

// Quote returns s as a ClickHouse string literal.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// Split splits a SQL script into statements at semicolons outside string
// literals, quoted identifiers and comments. Statements that hold only
// comments and white space are dropped; comments are kept inside the
// others.
func Split(script string) []string {
	var (
		out   []string
		start int
		code  bool // the current statement has something other than comments
	)
	flush := func(end int) {
		if code {
			out = append(out, strings.TrimSpace(script[start:end]))
		}
		start, code = end+1, false
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '-' && i+1 < len(script) && script[i+1] == '-':
			for i < len(script) && script[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(script) && script[i+1] == '*':
			end := strings.Index(script[i+2:], "*/")
			if end < 0 {
				i = len(script)
			} else {
				i += 2 + end + 1
			}
		case c == '\'' || c == '"' || c == '`':
			code = true
			for i++; i < len(script); i++ {
				if script[i] == '\\' {
					i++
					continue
				}
				if script[i] == c {
					if i+1 < len(script) && script[i+1] == c { // doubled quote
						i++
						continue
					}
					break
				}
			}
		case c == ';':
			flush(i)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(script[i:])
			if !unicode.IsSpace(r) {
				code = true
			}
			i += size - 1
		case !unicode.IsSpace(rune(c)):
			code = true
		}
	}
	flush(len(script))
	return out
}
