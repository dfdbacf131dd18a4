// Package chsql holds the parts of winback's ClickHouse sink that do not
// depend on how ClickHouse is reached: what a server version supports
// (Features), the versioned, templated migrations and their ledger (Apply,
// over any Executor), the batch of pending rows with latest-version-wins
// (Batch), and the columns of each table (Table).
//
// The sink (package sinks/clickhouse) uses it over clickhouse-go against a
// server; the chDB test (sinks/clickhouse/chdbtest) uses it over an
// in-process modern ClickHouse, so both run the same DDL and the same rows.
package chsql
