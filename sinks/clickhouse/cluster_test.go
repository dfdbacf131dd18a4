package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/winback/winback/schemas"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
	"github.com/winback/winback/testenv"
)

// nodeQuery runs q on every node of s's cluster (each node's local
// tables) and returns the rows per node.
func nodeQuery(t *testing.T, s *Sink, q string) [][][]string {
	t.Helper()
	var out [][][]string
	for _, n := range s.cluster.nodes {
		rows, err := queryStrings(testCtx(t, 30*time.Second), n.conn, q)
		if err != nil {
			t.Fatalf("%s on %s: %v", q, n.addr, err)
		}
		out = append(out, rows)
	}
	return out
}

func sortedText(rows [][]string) string {
	lines := strings.Split(join(rows), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// byText is rows in the order of their tab-joined text.
func byText(rows [][]string) [][]string {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(strings.Join(a, "\t"), strings.Join(b, "\t")) })
	return out
}

// TestClusterSameAsOneNode: the same stream written through the sink into
// one node and into a cluster of two shards (two clickhouse-server
// children, DDL run on each node: no ZooKeeper) gives the same tables
// under FINAL and the same output of every view, also after an erasure;
// and the cluster passes the hand-checked view fixture on its own.
func TestClusterSameAsOneNode(t *testing.T) {
	fx, err := chtest.Load("testdata/views.txt")
	if err != nil {
		t.Fatal(err)
	}
	cl := testenv.NewClickHouseCluster(t, testenv.ClusterOptions{Name: "wb", Shards: 2})
	// One node: a database of its own on the first server. The cluster's
	// sink talks to the second server, which sends the first its shard.
	one := migratedSink(t, cl.Nodes[0], Config{ActiveDays: fx.ActiveDays, Now: newClock(clock).now})
	two := migratedSink(t, cl.Nodes[1], Config{ActiveDays: fx.ActiveDays, Now: newClock(clock).now, Cluster: "wb"})
	if two.cluster == nil || two.cluster.onCluster || len(two.cluster.nodes) != 2 || two.cluster.shards != 2 {
		t.Fatalf("cluster mode: %+v, want 2 shards reached node by node", two.cluster)
	}
	dbOne, dbTwo := one.cfg.Database, two.cfg.Database
	for _, table := range tableNames {
		exec(t, one, "SYSTEM STOP MERGES "+dbOne+"."+table)
		nodeQuery(t, two, "SELECT 1 FROM system.one") // nodes answer
		for _, n := range two.cluster.nodes {
			if err := n.conn.Exec(testCtx(t, 30*time.Second), "SYSTEM STOP MERGES "+dbTwo+"."+table+"_local"); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeStream(t, one, fx)
	writeStream(t, two, fx)

	// The rows are spread over both shards, each customer on one.
	perNode := nodeQuery(t, two, "SELECT DISTINCT customer_id FROM "+dbTwo+".customer_daily_local ORDER BY customer_id")
	seen := map[string]int{}
	for i, rows := range perNode {
		if len(rows) == 0 {
			t.Fatalf("node %d holds no customer_daily rows: the cluster is not sharded", i+1)
		}
		for _, r := range rows {
			if prev, dup := seen[r[0]]; dup {
				t.Fatalf("customer %s has daily rows on nodes %d and %d", r[0], prev+1, i+1)
			}
			seen[r[0]] = i
		}
	}
	if n, final := count(t, two, "SELECT count() FROM "+dbTwo+".customer_aggregates"),
		count(t, two, "SELECT count() FROM "+dbTwo+".customer_aggregates FINAL"); n <= final {
		t.Fatalf("cluster customer_aggregates: %d rows, %d under FINAL: no duplicates to resist", n, final)
	}

	compare := func(t *testing.T, what string) {
		t.Helper()
		for _, table := range []string{"customer_aggregates", "customer_daily", "winback_triggers", "dlq_records"} {
			q := "SELECT * FROM %s." + table + " FINAL"
			a, b := query(t, one, fmt.Sprintf(q, dbOne)), query(t, two, fmt.Sprintf(q, dbTwo))
			if len(a) == 0 && table != "dlq_records" {
				t.Fatalf("%s: %s is empty", what, table)
			}
			if sortedText(a) != sortedText(b) {
				t.Errorf("%s: %s FINAL differs:\none node:\n%s\ncluster:\n%s", what, table, sortedText(a), sortedText(b))
			}
		}
		views := query(t, one, "SELECT name FROM system.tables WHERE database = '"+dbOne+"' AND engine = 'View' ORDER BY name")
		if len(views) < 16 {
			t.Fatalf("only %d views", len(views))
		}
		// A view's sums and averages add the shards' parts in whatever
		// order they answer, so their floats may differ in the last
		// digit: numbers match within 1e-9 (relative), the rest exactly.
		for _, v := range views {
			a, b := query(t, one, "SELECT * FROM "+dbOne+"."+v[0]), query(t, two, "SELECT * FROM "+dbTwo+"."+v[0])
			if err := chtest.Compare(byText(b), byText(a)); err != nil {
				t.Errorf("%s: view %s differs (got: the cluster, want: one node): %v", what, v[0], err)
			}
		}
	}
	compare(t, "after the stream")
	for _, e := range fx.Expects {
		if err := chtest.Compare(query(t, two, e.SQL(dbTwo)), e.Rows); err != nil {
			t.Errorf("cluster: testdata/views.txt:%d: %s", e.Line, err)
		}
	}
	retention, kpi := fx.Weekly()
	if err := chtest.Compare(query(t, two, chtest.Expect{Query: chtest.WeeklyRetentionQuery}.SQL(dbTwo)), retention); err != nil {
		t.Errorf("cluster retention_weekly: %v", err)
	}
	if err := chtest.Compare(query(t, two, chtest.Expect{Query: chtest.WeeklyKPIQuery}.SQL(dbTwo)), kpi); err != nil {
		t.Errorf("cluster kpi_weekly: %v", err)
	}

	// An erasure reaches the local tables of every shard. (Mutations run
	// in the merge pool: merges on again.)
	for _, table := range tableNames {
		exec(t, one, "SYSTEM START MERGES "+dbOne+"."+table)
		for _, n := range two.cluster.nodes {
			if err := n.conn.Exec(testCtx(t, 30*time.Second), "SYSTEM START MERGES "+dbTwo+"."+table+"_local"); err != nil {
				t.Fatal(err)
			}
		}
	}
	victims := []string{fx.Aggregates[0].CustomerID, fx.Aggregates[len(fx.Aggregates)-1].CustomerID}
	for _, s := range []*Sink{one, two} {
		if err := s.Erase(testCtx(t, time.Minute), victims); err != nil {
			t.Fatal(err)
		}
	}
	waitMutations(t, one)
	waitClusterMutations(t, two)
	if n := count(t, two, "SELECT count() FROM "+dbTwo+".customer_daily WHERE customer_id IN ('"+strings.Join(victims, "', '")+"')"); n != 0 {
		t.Fatalf("cluster: %d daily rows of erased customers", n)
	}
	compare(t, "after the erasure")
}

func waitClusterMutations(t *testing.T, s *Sink) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending := 0
		for _, rows := range nodeQuery(t, s, "SELECT toString(count()) FROM system.mutations WHERE database = '"+s.cfg.Database+"' AND is_done = 0") {
			if rows[0][0] != "0" {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mutations not done after 30 s: %v\nqueue %v", nodeQuery(t, s, "SELECT table, mutation_id, command, toString(parts_to_do) FROM system.mutations WHERE database = '"+s.cfg.Database+"' AND is_done = 0"), nodeQuery(t, s, "SELECT table, type, toString(num_tries), last_exception, postpone_reason FROM system.replication_queue"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMigrateLock: instances that start at once migrate once. Four sinks
// on one node, and four on a two-shard cluster talking to both nodes,
// migrate a new database at the same time: every migration is recorded
// exactly once (without the lock each would run and record it), and the
// waiters return without error.
func TestMigrateLock(t *testing.T) {
	cl := testenv.NewClickHouseCluster(t, testenv.ClusterOptions{Name: "wb", Shards: 2})
	files := len(migrationNames(t))
	for _, cluster := range []string{"", "wb"} {
		t.Run("cluster="+cluster, func(t *testing.T) {
			db := testDB(t)
			var sinks []*Sink
			for i := range 4 {
				node := cl.Nodes[0] // one node: every instance on it
				if cluster != "" {
					node = cl.Nodes[i%2]
				}
				s, _ := openSink(t, node, Config{Database: db, Cluster: cluster,
					lock: lockOpts(fmt.Sprintf("instance-%d", i))})
				sinks = append(sinks, s)
			}
			errs := make([]error, len(sinks))
			ran := make([]int, len(sinks))
			var wg sync.WaitGroup
			for i, s := range sinks {
				wg.Go(func() {
					names, err := applyNames(testCtx(t, time.Minute), s)
					ran[i], errs[i] = len(names), err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("instance %d: %v", i, err)
				}
			}
			slices.Sort(ran)
			if want := []int{0, 0, 0, files}; !slices.Equal(ran, want) {
				t.Errorf("migrations run per instance %v, want one instance running all %d", ran, files)
			}
			s := sinks[0]
			if got := count(t, s, "SELECT count() FROM "+db+".schema_migrations"); got != files {
				t.Errorf("schema_migrations has %d rows, want %d (one per migration)", got, files)
			}
			claims := count(t, s, "SELECT uniqExact(token) FROM "+db+".schema_lock")
			released := count(t, s, "SELECT uniqExactIf(token, released = 1) FROM "+db+".schema_lock")
			if claims < 1 || released != claims {
				t.Errorf("%d claims, %d released; want every claim released", claims, released)
			}
		})
	}
}

// lockOpts are the migration lock's options of instance owner: the
// production Settle (1 s), since a claim inserted through a replicated
// Distributed table can take longer than 300 ms on a loaded machine (a CI
// run with 300 ms saw a second instance read its earlier-dated claim as
// first and run a migration again), and a short Poll.
func lockOpts(owner string) (o chsql.LockOptions) {
	o.Owner, o.Poll = owner, 50*time.Millisecond
	return o
}

// applyNames is Migrate returning the migrations it ran.
func applyNames(ctx context.Context, s *Sink) ([]string, error) {
	return chsql.Apply(ctx, s.migrationExecutor(), schemas.ClickHouseMigrations(), s.migrationParams(), s.log)
}

// TestClusterReplicated: two shards of two replicas each (four servers and
// a ZooKeeper): four instances migrate at once and one runs the
// migrations; the DDL runs ON CLUSTER, the local tables are
// ReplicatedReplacingMergeTree, both replicas of a shard hold the same
// rows, the views pass the hand-checked fixture, and an erasure reaches
// every replica.
func TestClusterReplicated(t *testing.T) {
	fx, err := chtest.Load("testdata/views.txt")
	if err != nil {
		t.Fatal(err)
	}
	cl := testenv.NewClickHouseCluster(t, testenv.ClusterOptions{Name: "wb", Shards: 2, Replicas: 2})
	// Four instances, one per server, migrate at once: one runs the
	// migrations (ON CLUSTER), the others wait for the lock and find
	// nothing to do.
	db := testDB(t)
	var sinks []*Sink
	for i, n := range cl.Nodes {
		// Replicas fetch each other's claims with a lag that on this
		// 2-core machine, four servers and ZooKeeper under make test's
		// load, has exceeded a second: a settle of 3 s.
		lock := lockOpts(fmt.Sprintf("instance-%d", i))
		lock.Settle = 3 * time.Second
		s, _ := openSink(t, n, Config{Database: db, ActiveDays: fx.ActiveDays, Now: newClock(clock).now, Cluster: "wb", Replicated: true,
			lock: lock})
		sinks = append(sinks, s)
	}
	ran := make([]int, len(sinks))
	var wg sync.WaitGroup
	for i, s := range sinks {
		wg.Go(func() {
			names, err := applyNames(testCtx(t, 2*time.Minute), s)
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			ran[i] = len(names)
		})
	}
	wg.Wait()
	slices.Sort(ran)
	if files := len(migrationNames(t)); !slices.Equal(ran, []int{0, 0, 0, files}) || count(t, sinks[0], "SELECT count() FROM "+db+".schema_migrations") != files {
		t.Fatalf("migrations run per instance %v, want one instance running all %d, each recorded once", ran, files)
	}
	s := sinks[0]
	if s.cluster == nil || !s.cluster.onCluster || s.cluster.shards != 2 || s.cluster.replicas != 2 {
		t.Fatalf("cluster mode: %+v, want 2 shards × 2 replicas with ON CLUSTER", s.cluster)
	}
	// insert_quorum would be 2 from 20.3; on 18.16 it stalls the
	// erasure's mutations below.
	if q, set := s.cluster.settings["insert_quorum"]; set != s.features.InsertQuorum || set && q != 2 {
		t.Fatalf("insert_quorum %v (set %v) on %s", q, set, s.ServerVersion())
	}
	writeStream(t, s, fx)
	var perNode []string
	for _, n := range cl.Nodes {
		o, _ := openSink(t, n, Config{Database: db})
		if got := query(t, o, "SELECT engine FROM system.tables WHERE database = '"+db+"' AND name = 'customer_aggregates_local'"); len(got) != 1 || got[0][0] != "ReplicatedReplacingMergeTree" {
			t.Fatalf("%s: customer_aggregates_local engine %v", n.Addr(), got)
		}
		exec(t, o, "SYSTEM SYNC REPLICA "+db+".customer_daily_local")
		perNode = append(perNode, sortedText(query(t, o, "SELECT customer_id, day, version FROM "+db+".customer_daily_local FINAL")))
	}
	if perNode[0] != perNode[1] || perNode[2] != perNode[3] {
		t.Fatal("the replicas of a shard hold different customer_daily rows")
	}
	if perNode[0] == perNode[2] || perNode[0] == "" || perNode[2] == "" {
		t.Fatal("the two shards hold the same rows, or one holds none: not sharded")
	}
	for _, e := range fx.Expects {
		if err := chtest.Compare(query(t, s, e.SQL(db)), e.Rows); err != nil {
			t.Errorf("replicated cluster: testdata/views.txt:%d: %s", e.Line, err)
		}
	}
	// An erasure (ALTER TABLE ..._local ON CLUSTER ... DELETE) reaches
	// every replica.
	victim := fx.Aggregates[0].CustomerID
	before := count(t, s, "SELECT count() FROM "+db+".customer_daily")
	if err := s.Erase(testCtx(t, time.Minute), []string{victim}); err != nil {
		t.Fatal(err)
	}
	waitClusterMutations(t, s)
	for i, rows := range nodeQuery(t, s, "SELECT toString(count()) FROM "+db+".customer_daily_local WHERE customer_id = "+chsql.Quote(victim)) {
		if rows[0][0] != "0" {
			t.Errorf("server %d keeps %s daily rows of the erased customer", i+1, rows[0][0])
		}
	}
	if after := count(t, s, "SELECT count() FROM "+db+".customer_daily"); after >= before {
		t.Errorf("customer_daily has %d rows after the erasure, %d before", after, before)
	}
}
