package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeWalk returns the sh blocks of the README's "Try it yourself"
// section, in order.
func readmeWalk(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "<!-- newcomer-walk")
	if i < 0 {
		t.Fatal("README.md has no newcomer-walk marker")
	}
	s = s[i:]
	if j := strings.Index(s, "\n## "); j > 0 {
		s = s[:j]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) != 4 {
		t.Fatalf("the walk has %d sh blocks, want 4 (start, alice, bob, look)", len(blocks))
	}
	return blocks
}

// TestNewcomerWalk runs the README's "Try it yourself" path as a newcomer
// would, with its own commands (ports swapped for free ones): a fresh
// winback dev, the kcat example dated relative to now, then the trigger
// on the topic, the live state over HTTP and the row through
// clickhouse-client; Ctrl-C (SIGINT) ends it with exit code 0.
func TestNewcomerWalk(t *testing.T) {
	for _, tool := range []string{"bash", "kcat", "clickhouse-client", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps installs kcat and clickhouse-client): %v", tool, err)
		}
	}
	blocks := readmeWalk(t)
	kafkaAddr, regAddr, httpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	ports := strings.NewReplacer("127.0.0.1:19092", kafkaAddr, "127.0.0.1:18081", regAddr, "127.0.0.1:18080", httpAddr)

	// 1. Start winback dev exactly as the README says.
	var devLine string
	for _, l := range strings.Split(blocks[0], "\n") {
		if strings.HasPrefix(l, "bin/winback dev ") {
			devLine = l
		}
	}
	if devLine == "" {
		t.Fatalf("no bin/winback dev line in:\n%s", blocks[0])
	}
	args := strings.Fields(ports.Replace(devLine))[1:]
	for _, p := range []string{kafkaAddr, regAddr, httpAddr} {
		if !slicesContains(args, p) {
			t.Fatalf("the README's dev command does not use the walk's ports: %v", args)
		}
	}
	out := &syncBuffer{}
	dev := exec.Command(binPath, args...)
	dev.Stdout, dev.Stderr = out, out
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = dev.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("winback dev output:\n%s", out.String())
		}
	})
	waitReady(t, httpAddr, 90*time.Second)
	chPort := waitFor(t, 30*time.Second, "the clickhouse-client port in dev's output", func() (string, bool) {
		m := regexp.MustCompile(`clickhouse-client --port (\d+) `).FindStringSubmatch(out.String())
		if m == nil {
			return "", false
		}
		return m[1], true
	})

	sh := func(script string) string {
		t.Helper()
		c := exec.Command("bash", "-euo", "pipefail", "-c", ports.Replace(script))
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%v running:\n%s\noutput:\n%s\nwinback dev:\n%s", err, script, b, out.String())
		}
		return string(b)
	}
	// 2. and 3. The kcat example, dated relative to now.
	// The README's example uses kcat's default partitioner; with
	// --partitions 1 it does not matter where keys land.
	sh(blocks[1])
	sh(blocks[2])

	// 4. Look, with the README's own commands.
	var kcatLine, curlLine string
	var chLines []string
	for _, l := range strings.Split(strings.TrimSpace(blocks[3]), "\n") {
		switch {
		case strings.HasPrefix(l, "kcat "):
			kcatLine = l
		case strings.HasPrefix(l, "curl "):
			curlLine = l
		case strings.HasPrefix(l, "port="):
			chLines = append(chLines, "port="+chPort)
		default:
			chLines = append(chLines, l)
		}
	}
	if kcatLine == "" || curlLine == "" || len(chLines) != 2 {
		t.Fatalf("the look block is not kcat, curl, port= and clickhouse-client:\n%s", blocks[3])
	}
	type trigger struct {
		CustomerID    string `json:"customer_id"`
		Kind          string `json:"kind"`
		PrimaryReason string `json:"primary_reason"`
		Action        string `json:"recommended_action"`
	}
	tr := waitFor(t, 30*time.Second, "alice's trigger on winback-triggers", func() (trigger, bool) {
		for _, l := range strings.Split(strings.TrimSpace(sh(kcatLine)), "\n") {
			var tr trigger
			if json.Unmarshal([]byte(l), &tr) == nil && tr.CustomerID == "alice" {
				return tr, true
			}
		}
		return trigger{}, false
	})
	if tr.Kind != "WINBACK" || tr.PrimaryReason != "PURCHASE_LAPSE" || tr.Action != "WINBACK_OFFER" {
		t.Errorf("alice's trigger: %+v", tr)
	}
	var state struct {
		CustomerID string `json:"customer_id"`
		Orders     struct {
			Total int `json:"orders_total"`
		} `json:"orders"`
		LastTrigger struct {
			Reason string `json:"reason"`
		} `json:"last_trigger"`
	}
	if err := json.Unmarshal([]byte(sh(curlLine)), &state); err != nil {
		t.Fatalf("GET /v1/customers/alice is not JSON: %v", err)
	}
	if state.CustomerID != "alice" || state.Orders.Total != 8 || state.LastTrigger.Reason != "PURCHASE_LAPSE" {
		t.Errorf("GET /v1/customers/alice: %+v", state)
	}
	row := waitFor(t, 30*time.Second, "alice's row in ClickHouse", func() (string, bool) {
		r := strings.TrimSpace(sh(strings.Join(chLines, "\n")))
		return r, r == "alice\t8\tPURCHASE_LAPSE"
	})
	t.Logf("clickhouse-client: %q", row)

	// The build info is in /metrics.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^winback_build_info\{goversion="go1\.[^"]+",revision="[^"]+",version="[^"]+"\} 1$`).Match(metrics) {
		t.Errorf("/metrics has no winback_build_info")
	}

	// 5. Ctrl-C: exit 0 within 5 s, printing only what still works.
	began := time.Now()
	if err := dev.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("winback dev exited with %v after SIGINT; output:\n%s", err, out.String())
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("winback dev took %s to stop after SIGINT, want at most 5s", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("winback dev did not exit within 30s of SIGINT; output:\n%s", out.String())
	}
	after := out.String()[strings.LastIndex(out.String(), "stopped."):]
	if strings.Contains(after, "kcat ") || strings.Contains(after, "clickhouse-client ") || !strings.Contains(after, "no longer work") {
		t.Errorf("after the stop, dev printed:\n%s", after)
	}
}

// waitFor polls f until it says done or timeout passes.
func waitFor[T any](t *testing.T, timeout time.Duration, what string, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
