package chsql

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestJSONForms: every way the encoders named in jsonForms write an id is
// one of its forms. Go's encoding/json is run; the others are written out
// as those encoders print them.
func TestJSONForms(t *testing.T) {
	goJSON := func(s string, html bool) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(strings.TrimSpace(b.String()), `"`)[1:]
	}
	for _, c := range []struct {
		id   string
		want []string // besides Go's two
	}{
		{"plain-1", nil},
		{"ü-1", []string{`\u00fc-1`, `\u00FC-1`}},                             // Python, Jackson ESCAPE_NON_ASCII
		{"a/b<c>&\"q\"\\", []string{`a\/b<c>&\"q\"\\`}},                       // PHP escapes /
		{"😀\t\x01", []string{`\ud83d\ude00\t\u0001`, `\uD83D\uDE00\t\u0001`}}, // a surrogate pair
	} {
		forms := jsonForms(c.id)
		for _, w := range append(c.want, goJSON(c.id, true), goJSON(c.id, false)) {
			if !slices.Contains(forms, w) {
				t.Errorf("%q: %q is not among %q", c.id, w, forms)
			}
		}
	}
	if n := len(jsonForms("plain-1")); n != 1 {
		t.Errorf("an id that needs no escape has %d forms, want 1", n)
	}
}
