// Package testenv runs the real local components that `winback dev` and the
// tests use: a Kafka broker (kfake), a schema registry (srfake) and a
// ClickHouse server (clickhouse-server as a child process). Nothing here is
// a mock of the product's contracts; each is a server that speaks the real
// protocol on a real loopback port.
//
// # Kafka
//
// StartKafka runs franz-go's kfake as one broker on 127.0.0.1 (a fixed port
// or a free one). It supports what winback relies on: idempotent and
// transactional producers, read_committed fetches, classic and KIP-848
// consumer groups, and compacted topics (cleanup.policy=compact; compaction
// runs on a ticker, or at once with Cluster().Compact()). Topics are never
// auto-created: pass them in KafkaOptions or call CreateTopics. With a
// DataDir, topics, records, committed offsets and producer ids survive a
// Close (or a crash) and a start on the same directory.
//
// Any Kafka client can connect, since the broker advertises its real
// address. With Debian's kcat (built without Avro, so use JSON):
//
//	kcat -b 127.0.0.1:9092 -L                                  # metadata
//	echo 'c1:{"customer_id":"c1"}' | kcat -b 127.0.0.1:9092 -P -t orders -K:
//	kcat -b 127.0.0.1:9092 -C -t winback-triggers -o beginning -e
//	kcat -b 127.0.0.1:9092 -C -t winback-triggers -X isolation.level=read_committed -e
//
// The directory kafkajs holds a second outside client, in Node.js: a
// script on KafkaJS and @kafkajs/confluent-schema-registry (avsc) that
// produces events as Confluent Avro through a transactional producer and
// reads Avro triggers read_committed. scripts/deps.sh installs its
// packages, at the versions of its package-lock.json, into .cache/kafkajs;
// cmd/winback's TestProducerStyles runs it.
//
// # Schema registry
//
// StartRegistry serves franz-go's srfake (the Confluent REST API, in memory)
// on a loopback port; point sr.NewClient(sr.URLs(r.URL())) at it. Its
// compatibility check always passes: test schema evolution yourself.
//
// # ClickHouse
//
// StartClickHouse writes a minimal config.xml and users.xml into a
// directory (a temporary one by default), picks two free ports (native and
// HTTP) and runs clickhouse-server on them, with SIGKILL as its parent-death
// signal and in its own process group (so a terminal's Ctrl-C reaches only
// winback, which stops the server after flushing to it). It returns once
// SELECT 1 succeeds over the native protocol, or fails after 30 s with the
// tail of the server's error log. The config fits Debian's ClickHouse 18.16
// (see the comment on the template): timezone UTC, user "default" with no
// password on 127.0.0.1, logs in <dir>/log.
//
// Stop (SIGTERM, wait), Kill (SIGKILL) and Restart (same ports, same data)
// let tests take the server away and bring it back. EnsureClickHouse finds
// clickhouse-server and, when root with apt-get, installs it.
//
// If the environment variable CLICKHOUSE_DSN is set, StartClickHouse starts
// nothing and returns a handle on that server; Stop, Kill and Restart then
// return ErrExternalClickHouse.
//
// # A ClickHouse cluster
//
// StartClickHouseCluster runs several clickhouse-server children as the
// shards (and replicas) of one cluster: each config lists every node's
// native port under remote_servers, with macros {shard} (01, 02, ...) and
// {replica} (r1, r2, ...). With ZooKeeper (or more than one replica per
// shard) it also starts Debian's ZooKeeper as a child (StartZooKeeper: a
// free port, ready once "srvr" answers, since "ruok" answers before it
// serves sessions), gives every server an interserver port, and returns
// once each server has a ZooKeeper session, so ON CLUSTER DDL and
// Replicated tables work. CLICKHOUSE_DSN does not apply to clusters.
//
// # In tests
//
// NewKafka, NewRegistry, NewClickHouse and NewClickHouseCluster start a
// component for one test,
// close it in t.Cleanup and fail the test (with the install command for
// ClickHouse) if it cannot start. TestLogger sends warnings to the test
// log. Use scripts/deps.sh to install clickhouse-server, clickhouse-client,
// kcat, zookeeper and libchdb.so on a fresh Debian machine.
package testenv
