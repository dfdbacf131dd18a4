package prefetch

import (
	"testing"
	"unsafe"
)

// A prefetch must neither fault (nil included) nor change memory.
func TestAddr(t *testing.T) {
	b := []byte("winback")
	for _, p := range []unsafe.Pointer{
		nil,
		unsafe.Pointer(&b[0]),
		unsafe.Pointer(&b[len(b)-1]),
	} {
		Addr(p)
	}
	String("")
	String(string(b))
	if string(b) != "winback" {
		t.Fatalf("memory changed: %q", b)
	}
}

func BenchmarkAddr(b *testing.B) {
	buf := make([]byte, 64<<20)
	i := 0
	for b.Loop() {
		Addr(unsafe.Pointer(&buf[i]))
		i = (i + 4099*64) & (len(buf) - 1)
	}
}
