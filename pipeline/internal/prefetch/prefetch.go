// Package prefetch asks the CPU to start loading memory into its caches
// before the code that needs it runs, so that the wait for a cache miss
// (about 100 ns from DRAM) overlaps other work instead of stalling it.
//
// A prefetch is only a hint: it never faults, whatever the address, and
// changes nothing a program can observe except its speed. Go has no
// portable way to issue one (the runtime's is internal), so the amd64 and
// arm64 versions are one instruction of assembly each; elsewhere the
// functions do nothing.
package prefetch

import "unsafe"

// String prefetches the start of s: the cache lines holding its first and
// its 128th byte (or its last, if shorter).
func String(s string) {
	if len(s) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.StringData(s))
	Addr(p)
	Addr(unsafe.Add(p, min(len(s), 128)-1))
}
