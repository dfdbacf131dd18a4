package consume

import (
	"os/exec"
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
