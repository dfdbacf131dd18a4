package deploy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/winback/winback/config"
)

// repoRoot is the root of the winback module (deploy/..).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root %s: %v", root, err)
	}
	return root
}

// decodeYAMLFile decodes every document of a YAML file into a new T.
func decodeYAMLFile[T any](t *testing.T, file string) []T {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no YAML document", file)
	}
	return out
}

func decodeYAMLOne[T any](t *testing.T, file string) T {
	t.Helper()
	docs := decodeYAMLFile[T](t, file)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", file, len(docs))
	}
	return docs[0]
}

// stringList is a YAML scalar or sequence of strings (compose's command).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = stringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// settingsIndex indexes config.Settings by env and flag.
type settingsIndex struct {
	env, flag, key map[string]*config.Setting
}

func newSettingsIndex() settingsIndex {
	cfg := config.Default()
	idx := settingsIndex{env: map[string]*config.Setting{}, flag: map[string]*config.Setting{}, key: map[string]*config.Setting{}}
	for _, s := range config.Settings(&cfg) {
		idx.env[s.Env], idx.flag[s.Flag], idx.key[s.Key] = s, s, s
	}
	return idx
}

// checkEnvNames reports WINBACK_* names that are no setting, and other
// names that are not the Go runtime's.
func (idx settingsIndex) checkEnvNames(env map[string]string) []error {
	var errs []error
	for name := range env {
		switch {
		case name == "WINBACK_CONFIG":
		case strings.HasPrefix(name, "WINBACK_"):
			if idx.env[name] == nil {
				errs = append(errs, fmt.Errorf("env %s is not a setting of config.Config (see `winback config`)", name))
			}
		case name == "GOMEMLIMIT" || name == "GOMAXPROCS" || name == "GOGC" || name == "GODEBUG":
		default:
			errs = append(errs, fmt.Errorf("env %s: winback reads only WINBACK_* and the Go runtime's variables", name))
		}
	}
	return errs
}

var (
	commandsRe  = regexp.MustCompile(`"([a-z]+)":\s+cmd[A-Z]\w*,`)
	extraFlagRe = regexp.MustCompile(`\bfs\.(Int|Int64|Uint|Uint64|String|Bool|Duration|Float64)(?:Var)?\((?:&[\w.]+,\s*)?"([a-z0-9-]+)"`)
)

// binaryCLI is what cmd/winback accepts: its subcommands and the flags its
// commands register besides the config ones (gen's --customers, ...).
type binaryCLI struct {
	commands []string
	extra    map[string]string // flag -> kind (Int, Bool, ...)
}

func readBinaryCLI(t *testing.T) binaryCLI {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "cmd", "winback")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	cli := binaryCLI{extra: map[string]string{}}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range commandsRe.FindAllStringSubmatch(string(b), -1) {
			cli.commands = append(cli.commands, m[1])
		}
		for _, m := range extraFlagRe.FindAllStringSubmatch(string(b), -1) {
			cli.extra[m[2]] = m[1]
		}
	}
	for _, want := range []string{"run", "gen", "config"} {
		if !slices.Contains(cli.commands, want) {
			t.Fatalf("cmd/winback: command %q not found (found %q): has main.go changed shape?", want, cli.commands)
		}
	}
	return cli
}

// loadLikeWinback loads a configuration the way `winback <args>` does
// (config.Bind, flag parsing, config.Loader.Load with env), with files
// mapping --config paths inside a container to their content.
func loadLikeWinback(t *testing.T, cli binaryCLI, args []string, env, files map[string]string) (*config.Config, error) {
	t.Helper()
	if len(args) == 0 {
		return nil, errors.New("no arguments: the subcommand is missing")
	}
	if !slices.Contains(cli.commands, args[0]) {
		return nil, fmt.Errorf("%q is not a winback command (%q)", args[0], cli.commands)
	}
	cfg := config.Default()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := config.Bind(fs, &cfg)
	if args[0] != "run" { // run registers no extra flags
		for name, kind := range cli.extra {
			if kind == "Bool" {
				fs.Bool(name, false, "")
			} else {
				fs.String(name, "", "")
			}
		}
	}
	rest := slices.Clone(args[1:])
	for i, a := range rest {
		var file string
		var eq bool
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(rest) {
				file = rest[i+1]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			_, file, _ = strings.Cut(a, "=")
			eq = true
		default:
			continue
		}
		content, ok := files[file]
		if !ok {
			return nil, fmt.Errorf("--config %s: no such file is mounted", file)
		}
		tmp := filepath.Join(t.TempDir(), path.Base(file))
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if eq {
			rest[i] = "--config=" + tmp
		} else {
			rest[i+1] = tmp
		}
	}
	if err := fs.Parse(rest); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if file, ok := env["WINBACK_CONFIG"]; ok {
		content, ok := files[file]
		if !ok {
			return nil, fmt.Errorf("WINBACK_CONFIG=%s: no such file is mounted", file)
		}
		tmp := filepath.Join(t.TempDir(), path.Base(file))
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		env = mapsWith(env, "WINBACK_CONFIG", tmp)
	}
	err := l.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return &cfg, err
}

func mapsWith(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[k] = v
	return out
}

func httpPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("http addr %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("http addr %q: port: %v", addr, err)
	}
	return n
}
