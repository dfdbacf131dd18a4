package consume

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineImportsNoSink: the stages in pipeline/ declare what they
// need of their outputs and never import a sink; cmd/winback wires them.
func TestPipelineImportsNoSink(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/winback/winback/pipeline/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/winback/winback/pipeline/consume\n") {
		t.Fatalf("go list did not list pipeline/consume:\n%s", out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/winback/winback/sinks/") {
			t.Errorf("a pipeline package depends on %s", p)
		}
	}
}

// TestFileLength: no file of this package grows past 400 lines (issue 20):
// a file that does has taken on a second job, which goes in a file of its
// own.
func TestFileLength(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files found: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n > 400 {
			t.Errorf("%s has %d lines, more than 400", f, n)
		}
	}
}
