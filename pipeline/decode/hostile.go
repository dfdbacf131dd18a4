package decode

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/winback/winback/pipeline/event"
)

// HostileCase is one bad input record of a hostile-input corpus.
type HostileCase struct {
	Name   string     // the file holding the value
	Kind   event.Kind // the topic the record is on
	Key    []byte     // nil for a null key
	Value  []byte
	Reason Reason // what Decode must reject it with
}

// LoadHostileCorpus reads dir/manifest.txt and the value files it names.
// The manifest has one case per line, four fields separated by blanks:
//
//	<file> <kind: order|email|support> <key, or - for a null key> <reason>
//
// Blank lines and lines starting with # are ignored. Avro values in the
// corpus assume schema ids 1, 2 and 3 are the Order, EmailEvent and
// SupportEvent schemas, which is what codec.NewEventEncoder gives on a
// fresh registry.
func LoadHostileCorpus(dir string) ([]HostileCase, error) {
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.txt"))
	if err != nil {
		return nil, err
	}
	kinds := map[string]event.Kind{"order": event.KindOrder, "email": event.KindEmail, "support": event.KindSupport}
	var cases []HostileCase
	sc := bufio.NewScanner(bytes.NewReader(manifest))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s/manifest.txt:%d: want 4 fields, got %d", dir, line, len(f))
		}
		c := HostileCase{Name: f[0], Kind: kinds[f[1]], Reason: Reason(f[3])}
		if c.Kind == 0 {
			return nil, fmt.Errorf("%s/manifest.txt:%d: unknown kind %q", dir, line, f[1])
		}
		if f[2] != "-" {
			c.Key = []byte(f[2])
		}
		if c.Value, err = os.ReadFile(filepath.Join(dir, c.Name)); err != nil {
			return nil, fmt.Errorf("%s/manifest.txt:%d: %w", dir, line, err)
		}
		cases = append(cases, c)
	}
	return cases, sc.Err()
}
