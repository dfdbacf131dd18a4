package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md from the Config struct")

const referenceDoc = "../docs/config.md"

const referenceHeader = `# Configuration reference

Generated from the ` + "`config.Config`" + ` struct (` + "`winback config`" + ` prints it; ` + "`go test ./config -update`" + ` rewrites this file).
Precedence: flags, then ` + "`WINBACK_*`" + ` environment variables, then the YAML file given with ` + "`--config`" + ` (or ` + "`WINBACK_CONFIG`" + `), then these defaults.
Maps are set in YAML only.

`

// TestReferenceDocIsCurrent keeps docs/config.md equal to what the struct
// generates, so the documentation cannot drift from the code.
func TestReferenceDocIsCurrent(t *testing.T) {
	want := referenceHeader + Reference()
	if *update {
		if err := os.WriteFile(referenceDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("%v (run go test ./config -update)", err)
	}
	if string(got) != want {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want, "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("docs/config.md is stale at line %d (run go test ./config -update):\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("docs/config.md is stale: %d lines, want %d (run go test ./config -update)", len(gl), len(wl))
	}
}
