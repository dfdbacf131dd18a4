// Package chdbtest proves winback's ClickHouse DDL, views and insert
// deduplication on a modern ClickHouse: chDB, ClickHouse as an in-process
// library (libchdb.so from the npm package chdb, loaded by chdb-go without
// cgo). It has tests only; they run the same migrations (rendered for this
// engine's version, and for 18.16 too), write the same hand-checked dataset
// as the 18.16 integration tests (with INSERT ... VALUES, since chDB is
// not a server clickhouse-go can reach) and expect the same numbers.
//
// The tests find libchdb.so through CHDB_LIB_PATH or .cache/chdb/libpath
// (written by `make deps`) and fail with that advice when neither exists;
// see package chdbenv. The package is separate so that loading the library
// stays out of every other test binary.
package chdbtest
