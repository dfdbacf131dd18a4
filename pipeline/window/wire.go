package window

import (
	"encoding/binary"
	"math"
)

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func uvarint(b []byte) (uint64, int) { return binary.Uvarint(b) }

func appendFloat32(b []byte, f float32) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
}

func readFloat32(b []byte) (float32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	f := math.Float32frombits(binary.LittleEndian.Uint32(b))
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) || f < 0 {
		return 0, false
	}
	return f, true
}
