//go:build amd64 || arm64

package prefetch

import "unsafe"

// Addr prefetches the cache line holding the byte at p into all cache
// levels. p may be nil or point anywhere.
//
//go:noescape
func Addr(p unsafe.Pointer)
