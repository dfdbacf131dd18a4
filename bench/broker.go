package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/winback/winback/testenv"
)

// brokerInfo is the first line the broker child writes on stdout.
type brokerInfo struct {
	Kafka    string `json:"kafka"`
	Registry string `json:"registry"`
}

// runBroker is "bench broker": kfake (with a data directory) and srfake in
// this process, until stdin closes or the process is told to stop. Each
// line "compact" on stdin compacts the compacted topics now and answers
// "ok" on stdout.
func runBroker(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("bench broker", flag.ContinueOnError)
	dir := fs.String("data", "", "kfake data directory")
	parts := fs.Int("partitions", 6, "partitions per topic")
	topics := fs.String("topics", "", "comma-separated topics to create")
	compacted := fs.String("compacted", "", "comma-separated compacted topics to create")
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := testenv.StartKafka(ctx, testenv.KafkaOptions{
		Addr: "127.0.0.1:0", DataDir: *dir, Partitions: int32(*parts),
		Topics: splitList(*topics), CompactedTopics: splitList(*compacted),
	})
	if err != nil {
		return err
	}
	defer k.Close()
	reg, err := testenv.StartRegistry("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := json.NewEncoder(os.Stdout).Encode(brokerInfo{Kafka: k.Addr(), Registry: reg.URL()}); err != nil {
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			switch strings.TrimSpace(l) {
			case "compact":
				k.Cluster().Compact()
				fmt.Println("ok")
			default:
				fmt.Println("unknown command")
			}
		}
	}
}

// broker is the orchestrator's handle on the broker child.
type broker struct {
	brokerInfo
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startBroker(ctx context.Context, dir string, partitions int, topics, compacted []string) (*broker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "broker", "-data", dir, "-partitions", fmt.Sprint(partitions),
		"-topics", strings.Join(topics, ","), "-compacted", strings.Join(compacted, ","))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	b := &broker{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := b.out.ReadString('\n')
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("broker did not start: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &b.brokerInfo); err != nil {
		b.Close()
		return nil, fmt.Errorf("broker said %q: %w", line, err)
	}
	return b, nil
}

// Compact compacts the broker's compacted topics now.
func (b *broker) Compact() error {
	if _, err := io.WriteString(b.stdin, "compact\n"); err != nil {
		return err
	}
	line, err := b.out.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "ok" {
		return fmt.Errorf("broker answered %q to compact", line)
	}
	return nil
}

// CPU is the broker process's CPU time so far.
func (b *broker) CPU() time.Duration { return procCPU(b.cmd.Process.Pid) }

// Close stops the broker (closing stdin makes it save and exit).
func (b *broker) Close() error {
	_ = b.stdin.Close()
	err := b.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() {
		return nil // killed on cancel
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
