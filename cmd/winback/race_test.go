//go:build race

package main

// Under `go test -race` (make race) the winback children are built with
// the race detector too, so that the multi-process tests check the
// pipeline's goroutines, not only this test process's.
func init() { raceBuild = true }
