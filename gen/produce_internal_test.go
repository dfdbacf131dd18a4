package gen

import "testing"

func TestRawValueIsNeverNull(t *testing.T) {
	if v := rawValue([]byte{}); v == nil {
		t.Fatal("an empty malformed value became nil, which Kafka clients send as a null (tombstone)")
	}
	if v := rawValue([]byte("<html>")); string(v) != "<html>" {
		t.Fatalf("rawValue = %q", v)
	}
}
