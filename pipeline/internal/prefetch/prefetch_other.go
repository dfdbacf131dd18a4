//go:build !amd64 && !arm64

package prefetch

import "unsafe"

// Addr would prefetch the cache line holding the byte at p; on this
// architecture it does nothing.
func Addr(p unsafe.Pointer) {}
