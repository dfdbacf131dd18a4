package chsql

import (
	"fmt"
	"iter"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Cluster mode: the migration files are written for one node. With a
// cluster name set, Load renders them for a cluster of shards instead,
// statement by statement, without a second copy of any file:
//
//   - CREATE TABLE db.t ... ENGINE = XMergeTree(args) (a data table)
//     becomes the local table db.t_local, on every node, with the same
//     columns, keys and settings (ReplicatedXMergeTree('/clickhouse/
//     tables/{shard}/db.t_local', '{replica}', args) when replicated), and
//     the Distributed table db.t over it, sharded by
//     cityHash64(customer_id) (by cityHash64 of the sorting key when the
//     table has no customer_id). Every version of a customer lives on one
//     shard, so FINAL on each shard, which is what FINAL on the
//     Distributed table runs, is FINAL over the whole table.
//   - ALTER TABLE on a data table: column changes go to the local and the
//     Distributed table; anything else (settings, mutations) to the local
//     one. DROP and OPTIMIZE follow the same split.
//   - a materialized view reads and writes local tables (it sees the
//     blocks inserted on its own node, which the Distributed table sent
//     there); one with an inner MergeTree engine becomes a local view plus
//     a Distributed table under its name.
//   - a plain view keeps its text: it reads the Distributed tables under
//     the original names. Its JOINs and IN (SELECT ...) become GLOBAL, so
//     that a view whose main table is Distributed ships the right side to
//     the shards instead of being refused ("double-distributed
//     subqueries"); on a query that is not distributed GLOBAL changes
//     nothing.
//   - everything else (INSERT ... SELECT backfills) runs once, on the
//     node winback is connected to, through the Distributed tables.
//
// Statements marked Everywhere run on every node: with ON CLUSTER where
// the server has ZooKeeper (OnCluster), else on each node in turn (the
// sink connects to every host of the cluster).

// Cluster configures cluster-mode rendering.
type Cluster struct {
	// Name is the cluster in the servers' remote_servers; "" is a single
	// node, rendered as the files are.
	Name string
	// Replicated: the local tables are Replicated*MergeTree with the
	// servers' {shard} and {replica} macros (needs ZooKeeper).
	Replicated bool
}

// LocalSuffix names the local table under a Distributed one.
const LocalSuffix = "_local"

// ValidCluster reports whether name can be used as a cluster name
// unquoted (ON CLUSTER name).
func ValidCluster(name string) bool { return identRE.MatchString(name) }

// tok is a word (an identifier, possibly db.name) or a single punctuation
// character of a statement, outside comments and string literals.
type tok struct {
	start, end int
	text       string
}

func (t tok) is(word string) bool { return strings.EqualFold(t.text, word) }

// tokens splits a statement into words and punctuation, skipping
// comments, string literals and quoted identifiers (they become one token
// each, so that their content is never rewritten).
func tokens(s string) []tok {
	var out []tok
	isWord := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '{' || c == '}'
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				i = len(s)
			} else {
				i += 2 + end + 2
			}
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j++
						continue
					}
					break
				}
			}
			j = min(j+1, len(s))
			out = append(out, tok{i, j, s[i:j]})
			i = j
		case isWord(c):
			j := i
			for j < len(s) && isWord(s[j]) {
				j++
			}
			out = append(out, tok{i, j, s[i:j]})
			i = j
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c >= utf8.RuneSelf:
			_, size := utf8.DecodeRuneInString(s[i:])
			out = append(out, tok{i, i + size, s[i : i+size]})
			i += size
		default:
			out = append(out, tok{i, i + 1, s[i : i+1]})
			i++
		}
	}
	return out
}

// edit replaces s[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// applyEdits applies non-overlapping edits (in any order) to s.
func applyEdits(s string, edits []edit) string {
	// insertion sort by start; edits are few
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && edits[j].start < edits[j-1].start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	var b strings.Builder
	at := 0
	for _, e := range edits {
		b.WriteString(s[at:e.start])
		b.WriteString(e.text)
		at = e.end
	}
	b.WriteString(s[at:])
	return b.String()
}

// clusterStmt is one statement rendered for a cluster.
type clusterStmt struct {
	sql        string
	everywhere bool
}

// clusterRenderer carries what earlier statements created: the data
// tables, which have a local table under a Distributed one.
type clusterRenderer struct {
	c    Cluster
	db   string
	data map[string]bool // table names (without db) that are Distributed over name_local
}

func newClusterRenderer(c Cluster, db string) *clusterRenderer {
	return &clusterRenderer{c: c, db: db, data: map[string]bool{}}
}

var mergeTreeRE = regexp.MustCompile(`^(Replicated)?([A-Za-z]*)MergeTree$`)

// head returns the statement's leading keywords (up to n) and the index of
// the first token after them.
func wordsAt(ts []tok, i int, words ...string) bool {
	if i+len(words) > len(ts) {
		return false
	}
	for k, w := range words {
		if !ts[i+k].is(w) {
			return false
		}
	}
	return true
}

// objectName finds the object a DDL statement names: the token index of
// db.name after the leading keywords and IF [NOT] EXISTS, or -1.
func objectName(ts []tok, from int) int {
	i := from
	if wordsAt(ts, i, "IF", "NOT", "EXISTS") {
		i += 3
	} else if wordsAt(ts, i, "IF", "EXISTS") {
		i += 2
	}
	if i < len(ts) {
		return i
	}
	return -1
}

// dataTable returns the table name if t is db.name of a data table.
func (r *clusterRenderer) dataTable(t tok) (string, bool) {
	db, name, ok := strings.Cut(t.text, ".")
	if !ok || db != r.db || !r.data[name] {
		return "", false
	}
	return name, true
}

func (r *clusterRenderer) local(name string) string { return r.db + "." + name + LocalSuffix }

// render renders one single-node statement for the cluster.
func (r *clusterRenderer) render(st string) ([]clusterStmt, error) {
	ts := tokens(st)
	if len(ts) == 0 {
		return []clusterStmt{{st, false}}, nil
	}
	switch {
	case wordsAt(ts, 0, "CREATE", "DATABASE"):
		return []clusterStmt{{st, true}}, nil
	case wordsAt(ts, 0, "CREATE", "TABLE"):
		return r.createTable(st, ts)
	case wordsAt(ts, 0, "CREATE", "MATERIALIZED", "VIEW"):
		return r.createMV(st, ts)
	case wordsAt(ts, 0, "CREATE", "VIEW"), wordsAt(ts, 0, "CREATE", "OR", "REPLACE", "VIEW"):
		st = r.wrapScalarLevels(st, ts)
		return []clusterStmt{{globalJoins(st, tokens(st)), true}}, nil
	case wordsAt(ts, 0, "ALTER", "TABLE"):
		return r.alter(st, ts)
	case wordsAt(ts, 0, "DROP", "TABLE"), wordsAt(ts, 0, "DROP", "VIEW"):
		i := objectName(ts, 2)
		if i < 0 {
			return nil, fmt.Errorf("cluster mode: cannot find the table of %q", st)
		}
		if name, ok := r.dataTable(ts[i]); ok {
			delete(r.data, name)
			return []clusterStmt{
				{st, true},
				{applyEdits(st, []edit{{ts[i].start, ts[i].end, r.local(name)}}), true},
			}, nil
		}
		return []clusterStmt{{st, true}}, nil
	case wordsAt(ts, 0, "OPTIMIZE", "TABLE"), wordsAt(ts, 0, "TRUNCATE", "TABLE"):
		i := objectName(ts, 2)
		if i < 0 {
			return nil, fmt.Errorf("cluster mode: cannot find the table of %q", st)
		}
		if name, ok := r.dataTable(ts[i]); ok {
			return []clusterStmt{{applyEdits(st, []edit{{ts[i].start, ts[i].end, r.local(name)}}), true}}, nil
		}
		return []clusterStmt{{st, true}}, nil
	case ts[0].is("CREATE"), ts[0].is("RENAME"), ts[0].is("DROP"), ts[0].is("ATTACH"), ts[0].is("DETACH"):
		return nil, fmt.Errorf("cluster mode: no cluster rendering for %q", firstLine(st))
	}
	// INSERT ... SELECT and the like: once, through the Distributed tables.
	return []clusterStmt{{st, false}}, nil
}

func firstLine(st string) string {
	for _, l := range strings.Split(st, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			return l
		}
	}
	return st
}

// engine finds ENGINE = Name at depth 0 from token i: the index of Name,
// and of the token after its argument list (or after Name).
func engine(ts []tok, from int) (name, after int) {
	for i, depth := range depths(ts, from) {
		if depth == 0 && ts[i].is("ENGINE") && i+2 < len(ts) && ts[i+1].text == "=" {
			name = i + 2
			after = name + 1
			if after < len(ts) && ts[after].text == "(" {
				end := closingParen(ts, after)
				if end < 0 {
					return -1, -1 // unbalanced: left to the server to refuse
				}
				after = end + 1
			}
			return name, after
		}
	}
	return -1, -1
}

// closingParen returns the index of the ")" that closes the "(" at
// ts[open], or -1 if none does.
func closingParen(ts []tok, open int) int {
	for k, depth := range depths(ts, open) {
		if depth == 0 {
			return k
		}
	}
	return -1
}

// depths yields the index of every token of ts from from on, with the
// parenthesis depth after it, counted from from (a "(" at from is at
// depth 1, its closing ")" at 0).
func depths(ts []tok, from int) iter.Seq2[int, int] {
	return func(yield func(i, depth int) bool) {
		depth := 0
		for i := from; i < len(ts); i++ {
			switch ts[i].text {
			case "(":
				depth++
			case ")":
				depth--
			}
			if !yield(i, depth) {
				return
			}
		}
	}
}

// replicatedEngine renders the engine tokens ts[name:after] as the
// Replicated variant for the local table db.local.
func (r *clusterRenderer) replicatedEngine(st string, ts []tok, name, after int, local string) edit {
	m := mergeTreeRE.FindStringSubmatch(ts[name].text)
	zk := Quote("/clickhouse/tables/{shard}/"+local) + ", '{replica}'"
	args := ""
	if after > name+1 { // (args)
		inner := strings.TrimSpace(st[ts[name+1].end:ts[after-1].start])
		if inner != "" {
			args = ", " + inner
		}
	}
	return edit{ts[name].start, ts[after-1].end, "Replicated" + m[2] + "MergeTree(" + zk + args + ")"}
}

// dedupSetting: replicated tables keep replicated_deduplication_window;
// non_replicated_deduplication_window is ignored by them.
func (r *clusterRenderer) dedupSetting(st string, ts []tok) []edit {
	if !r.c.Replicated {
		return nil
	}
	var es []edit
	for _, t := range ts {
		if t.is("non_replicated_deduplication_window") {
			es = append(es, edit{t.start, t.end, "replicated_deduplication_window"})
		}
	}
	return es
}

func (r *clusterRenderer) createTable(st string, ts []tok) ([]clusterStmt, error) {
	i := objectName(ts, 2)
	if i < 0 {
		return nil, fmt.Errorf("cluster mode: cannot find the table of %q", firstLine(st))
	}
	db, _, ok := strings.Cut(ts[i].text, ".")
	if !ok || db != r.db {
		return nil, fmt.Errorf("cluster mode: table %s is not in database %s", ts[i].text, r.db)
	}
	en, after := engine(ts, i+1)
	if en < 0 || !mergeTreeRE.MatchString(ts[en].text) {
		// Memory, Log, Null...: the same on every node.
		return []clusterStmt{{st, true}}, nil
	}
	if strings.HasPrefix(ts[en].text, "Replicated") {
		return nil, fmt.Errorf("cluster mode: %s is already Replicated; write migrations for one node", ts[i].text)
	}
	key, err := shardingKey(st, ts, i+1)
	if err != nil {
		return nil, fmt.Errorf("cluster mode: %s: %w", ts[i].text, err)
	}
	return r.localAndDistributed(st, ts, dataTableAt{from: 2, name: i, engine: en, after: after}, key, r.dedupSetting(st, ts)), nil
}

// dataTableAt are the token indexes of a CREATE statement of a data table:
// from, the first token after the leading keywords (CREATE TABLE, CREATE
// MATERIALIZED VIEW); name, db.name; engine and after, its ENGINE's name
// and the token after the engine's arguments.
type dataTableAt struct {
	from, name, engine, after int
}

// localAndDistributed renders the CREATE statement st of a data table as
// two statements for every node: st with edits, on the local table (with
// the Replicated engine when the cluster is replicated), and the
// Distributed table under the original name over it, sharded by key. IF
// NOT EXISTS carries over to the Distributed table. The table is recorded
// as a data table for the statements after it.
func (r *clusterRenderer) localAndDistributed(st string, ts []tok, at dataTableAt, key string, edits []edit) []clusterStmt {
	_, name, _ := strings.Cut(ts[at.name].text, ".")
	local := r.local(name)
	edits = append(edits, edit{ts[at.name].start, ts[at.name].end, local})
	if r.c.Replicated {
		edits = append(edits, r.replicatedEngine(st, ts, at.engine, at.after, local))
	}
	ifNot := ""
	if wordsAt(ts, at.from, "IF", "NOT", "EXISTS") {
		ifNot = "IF NOT EXISTS "
	}
	dist := fmt.Sprintf("CREATE TABLE %s%s.%s AS %s ENGINE = Distributed(%s, %s, %s, %s)",
		ifNot, r.db, name, local, r.c.Name, r.db, name+LocalSuffix, key)
	r.data[name] = true
	return []clusterStmt{{applyEdits(st, edits), true}, {dist, true}}
}

// shardingKey is cityHash64(customer_id) for a table with that column, else
// cityHash64 of its sorting key.
func shardingKey(st string, ts []tok, from int) (string, error) {
	// Columns: the first word after "(" or "," at depth 1 of the first
	// parenthesis.
	for i, depth := range depths(ts, from) {
		if depth == 0 && ts[i].text == ")" {
			break
		}
		if depth == 1 && (ts[i].text == "(" || ts[i].text == ",") && i+1 < len(ts) && ts[i+1].is("customer_id") {
			return "cityHash64(customer_id)", nil
		}
		if depth == 0 && ts[i].is("ENGINE") {
			break
		}
	}
	for i := from; i+2 < len(ts); i++ {
		if ts[i].is("ORDER") && ts[i+1].is("BY") {
			j := i + 2
			if ts[j].text == "(" {
				if k := closingParen(ts, j); k >= 0 {
					return "cityHash64(" + strings.TrimSpace(st[ts[j].end:ts[k].start]) + ")", nil
				}
			}
			return "cityHash64(" + ts[j].text + ")", nil
		}
	}
	return "", fmt.Errorf("no customer_id column and no ORDER BY to shard by")
}

func (r *clusterRenderer) createMV(st string, ts []tok) ([]clusterStmt, error) {
	i := objectName(ts, 3)
	if i < 0 {
		return nil, fmt.Errorf("cluster mode: cannot find the view of %q", firstLine(st))
	}
	var edits []edit
	hasTo := false
	for k := i + 1; k < len(ts); k++ {
		if ts[k].is("TO") && k == i+1 {
			hasTo = true
		}
		if name, ok := r.dataTable(ts[k]); ok {
			edits = append(edits, edit{ts[k].start, ts[k].end, r.local(name)})
		}
	}
	if hasTo {
		return []clusterStmt{{applyEdits(st, edits), true}}, nil
	}
	en, after := engine(ts, i+1)
	if en < 0 || !mergeTreeRE.MatchString(ts[en].text) {
		return []clusterStmt{{applyEdits(st, edits), true}}, nil
	}
	// An inner MergeTree engine: the view is a data table of its own.
	if db, _, _ := strings.Cut(ts[i].text, "."); db != r.db {
		return nil, fmt.Errorf("cluster mode: view %s is not in database %s", ts[i].text, r.db)
	}
	key, err := shardingKey(st, ts, after)
	if err != nil {
		key = "rand()"
	}
	return r.localAndDistributed(st, ts, dataTableAt{from: 3, name: i, engine: en, after: after}, key, edits), nil
}

// alter splits ALTER TABLE on a data table: column changes to both tables,
// everything else to the local one.
func (r *clusterRenderer) alter(st string, ts []tok) ([]clusterStmt, error) {
	i := objectName(ts, 2)
	if i < 0 {
		return nil, fmt.Errorf("cluster mode: cannot find the table of %q", firstLine(st))
	}
	name, ok := r.dataTable(ts[i])
	if !ok {
		return []clusterStmt{{st, true}}, nil
	}
	localSQL := applyEdits(st, append([]edit{{ts[i].start, ts[i].end, r.local(name)}}, r.dedupSetting(st, ts)...))
	out := []clusterStmt{{localSQL, true}}
	if i+2 < len(ts) && ts[i+2].is("COLUMN") &&
		(ts[i+1].is("ADD") || ts[i+1].is("DROP") || ts[i+1].is("MODIFY") || ts[i+1].is("COMMENT") || ts[i+1].is("RENAME")) {
		out = append(out, clusterStmt{st, true})
	}
	return out, nil
}

// wrapScalarLevels works around 18.16 on Distributed tables: a query
// that reads a Distributed table and has a scalar subquery of a typed
// value ((SELECT max(as_of) FROM ...) is a DateTime('UTC')) fails ("Not
// found column ... _subqueryN in block": the shards name the column after
// the substituted literal). So in a SELECT with a scalar subquery, FROM
// db.t [FINAL] of a data table becomes FROM (SELECT * FROM db.t [FINAL]):
// the Distributed read is a subquery of its own and the scalar is computed
// where the rows arrive. Same rows, same result.
func (r *clusterRenderer) wrapScalarLevels(st string, ts []tok) string {
	// level[i]: the token index of the "(" opening the subquery that
	// holds token i, or -1 at the top.
	level := make([]int, len(ts))
	type open struct {
		at  int
		sub bool
	}
	var stack []open
	cur := func() int {
		for k := len(stack) - 1; k >= 0; k-- {
			if stack[k].sub {
				return stack[k].at
			}
		}
		return -1
	}
	scalar := map[int]bool{} // levels holding a scalar subquery
	for i, t := range ts {
		level[i] = cur()
		switch t.text {
		case "(":
			sub := i+1 < len(ts) && ts[i+1].is("SELECT")
			if sub && i > 0 && !ts[i-1].is("FROM") && !ts[i-1].is("JOIN") && !ts[i-1].is("IN") && !ts[i-1].is("AS") {
				scalar[level[i]] = true
			}
			stack = append(stack, open{i, sub})
		case ")":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	var edits []edit
	for i := 1; i < len(ts); i++ {
		if _, ok := r.dataTable(ts[i]); !ok || !ts[i-1].is("FROM") || !scalar[level[i]] {
			continue
		}
		end := ts[i].end
		if i+1 < len(ts) && ts[i+1].is("FINAL") {
			end = ts[i+1].end
		}
		edits = append(edits, edit{ts[i].start, end, "(SELECT * FROM " + st[ts[i].start:end] + ")"})
	}
	return applyEdits(st, edits)
}

// globalJoins makes a view's subquery JOINs and IN (SELECT ...) GLOBAL.
// ARRAY JOIN is not a join of tables and stays.
func globalJoins(st string, ts []tok) string {
	var edits []edit
	joinWords := map[string]bool{"ANY": true, "ALL": true, "INNER": true, "LEFT": true, "RIGHT": true, "FULL": true, "CROSS": true, "OUTER": true, "ASOF": true, "SEMI": true, "ANTI": true}
	for i, t := range ts {
		switch {
		case t.is("JOIN"):
			j := i
			for j > 0 && joinWords[strings.ToUpper(ts[j-1].text)] {
				j--
			}
			if j > 0 && (ts[j-1].is("GLOBAL") || ts[j-1].is("ARRAY")) || i > 0 && ts[i-1].is("ARRAY") {
				continue
			}
			edits = append(edits, edit{ts[j].start, ts[j].start, "GLOBAL "})
		case t.is("IN") && i+2 < len(ts) && ts[i+1].text == "(" && ts[i+2].is("SELECT"):
			j := i
			if j > 0 && ts[j-1].is("NOT") {
				j--
			}
			if j > 0 && ts[j-1].is("GLOBAL") {
				continue
			}
			edits = append(edits, edit{ts[j].start, ts[j].start, "GLOBAL "})
		}
	}
	return applyEdits(st, edits)
}

// OnCluster returns a statement marked Everywhere with ON CLUSTER name
// after the object it names (CREATE/DROP/ALTER/OPTIMIZE/TRUNCATE ...
// db.name ON CLUSTER c ..., CREATE DATABASE db ON CLUSTER c).
func OnCluster(st, cluster string) (string, error) {
	ts := tokens(st)
	var from int
	switch {
	case wordsAt(ts, 0, "CREATE", "MATERIALIZED", "VIEW"):
		from = 3
	case wordsAt(ts, 0, "CREATE", "OR", "REPLACE", "VIEW"):
		from = 4
	case wordsAt(ts, 0, "DELETE", "FROM"):
		from = 2
	case len(ts) >= 2 && (ts[0].is("CREATE") || ts[0].is("DROP") || ts[0].is("ALTER") || ts[0].is("OPTIMIZE") || ts[0].is("TRUNCATE")):
		from = 2
	default:
		return "", fmt.Errorf("chsql: no ON CLUSTER form for %q", firstLine(st))
	}
	i := objectName(ts, from)
	if i < 0 {
		return "", fmt.Errorf("chsql: no object in %q", firstLine(st))
	}
	return st[:ts[i].end] + " ON CLUSTER " + cluster + st[ts[i].end:], nil
}

// clusterize renders every migration's statements for the cluster, in
// version order (a table created in one migration is altered in a later
// one), and sets their SQL and rendered checksum accordingly.
func clusterize(ms []Migration, c Cluster, db string) error {
	r := newClusterRenderer(c, db)
	for k := range ms {
		m := &ms[k]
		var sts []string
		var every []bool
		for _, st := range m.Statements {
			out, err := r.render(st)
			if err != nil {
				return fmt.Errorf("chsql: migration %s: %w", m.Name, err)
			}
			for _, o := range out {
				sts = append(sts, o.sql)
				every = append(every, o.everywhere)
			}
		}
		m.Statements, m.Everywhere = sts, every
		m.SQL = joinStatements(sts)
		m.RenderedChecksum = checksum([]byte(m.SQL))
	}
	return nil
}

func joinStatements(sts []string) string {
	var b strings.Builder
	for _, s := range sts {
		b.WriteString(s)
		b.WriteString(";\n\n")
	}
	return b.String()
}

// AltersDistributed reports whether st is an ALTER TABLE of a table that
// is not a local one (cluster mode: a Distributed table). ClickHouse 18.16
// refuses ALTER ... ON CLUSTER of a non-replicated table on a cluster
// whose shards have internal replication, so the executor runs those node
// by node.
func AltersDistributed(st string) bool {
	ts := tokens(st)
	if !wordsAt(ts, 0, "ALTER", "TABLE") {
		return false
	}
	i := objectName(ts, 2)
	return i >= 0 && !strings.HasSuffix(ts[i].text, LocalSuffix)
}
