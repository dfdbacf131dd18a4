package testenv

import (
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestConfigGolden pins the generated config.xml and users.xml.
func TestConfigGolden(t *testing.T) {
	dir := t.TempDir()
	l := newLayout(filepath.Join(dir, "ch"), 19000, 18123)
	if err := l.write(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ got, golden string }{
		{l.Config, "testdata/config.golden.xml"},
		{l.Users, "testdata/users.golden.xml"},
	} {
		got, err := os.ReadFile(f.got)
		if err != nil {
			t.Fatal(err)
		}
		// Make the temp dir stable.
		got = []byte(strings.ReplaceAll(string(got), dir, "/TMP"))
		if *update {
			if err := os.WriteFile(f.golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(f.golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s (go test -update to accept):\n%s", f.got, f.golden, got)
		}
	}
}

// TestConfigEscaping: a directory name with XML metacharacters still gives
// well-formed XML that names the directory exactly.
func TestConfigEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `a&b <c> "d"`)
	l := newLayout(dir, 1, 2)
	if err := l.write(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Path    string `xml:"path"`
		TCPPort int    `xml:"tcp_port"`
	}
	if err := xml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.xml is not XML: %v\n%s", err, b)
	}
	if cfg.Path != l.Data || cfg.TCPPort != 1 {
		t.Fatalf("path %q tcp_port %d, want %q and 1", cfg.Path, cfg.TCPPort, l.Data)
	}
}
