package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func clusterQuery(t *testing.T, dsn, q string) [][]string {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, []string{a, b})
	}
	return out
}

// TestClickHouseCluster: two servers started as two shards know each
// other: a query through remote() over the cluster reaches both, each
// answering with its own {shard} macro and port.
func TestClickHouseCluster(t *testing.T) {
	c := NewClickHouseCluster(t, ClusterOptions{Name: "twoshards"})
	if len(c.Nodes) != 2 || c.ZooKeeper != nil {
		t.Fatalf("%d nodes, zookeeper %v; want 2 shards without ZooKeeper", len(c.Nodes), c.ZooKeeper)
	}
	for _, n := range c.Nodes {
		got := clusterQuery(t, n.DSN(), "SELECT toString(shard_num), toString(port) FROM system.clusters WHERE cluster = 'twoshards' ORDER BY shard_num")
		want := fmt.Sprintf("[[1 %d] [2 %d]]", c.Nodes[0].layout.TCPPort, c.Nodes[1].layout.TCPPort)
		if fmt.Sprint(got) != want {
			t.Fatalf("system.clusters on %s: %v, want %s", n.Addr(), got, want)
		}
	}
	for i, n := range c.Nodes {
		got := clusterQuery(t, n.DSN(), "SELECT macro, substitution FROM system.macros ORDER BY macro")
		if want := fmt.Sprintf("[[replica r1] [shard 0%d]]", i+1); fmt.Sprint(got) != want {
			t.Fatalf("macros of node %d: %v, want %s", i+1, got, want)
		}
	}
	// system.one has one row per server: two through the cluster.
	got := clusterQuery(t, c.Nodes[1].DSN(), "SELECT toString(count()), '' FROM cluster('twoshards', system, one)")
	if got[0][0] != "2" {
		t.Fatalf("a query over the cluster counted %s servers, want 2", got[0][0])
	}
}
