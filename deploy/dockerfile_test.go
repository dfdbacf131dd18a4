package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type dockerStage struct {
	from, name string
	instr      [][2]string // instruction (upper case), arguments
}

func parseDockerfile(t *testing.T, file string) []dockerStage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		instr, args, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		args = strings.TrimSpace(args)
		if instr == "FROM" {
			f := strings.Fields(args)
			st := dockerStage{}
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				default:
					st.from = f[i]
				}
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if instr != "ARG" {
				t.Errorf("Dockerfile: %s before the first FROM", instr)
			}
			return
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, [2]string{instr, args})
	}
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if c, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), "\\"); ok {
			cur.WriteString(c)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

func (s dockerStage) last(instr string) (string, bool) {
	for i := len(s.instr) - 1; i >= 0; i-- {
		if s.instr[i][0] == instr {
			return s.instr[i][1], true
		}
	}
	return "", false
}

func (s dockerStage) all(instr string) []string {
	var out []string
	for _, in := range s.instr {
		if in[0] == instr {
			out = append(out, in[1])
		}
	}
	return out
}

// imageFacts is what the other manifests must agree with.
type imageFacts struct {
	uid, gid   int
	entrypoint []string
	cmd        []string
	port       int
	httpAddr   string
}

func dockerImage(t *testing.T) imageFacts {
	t.Helper()
	root := repoRoot(t)
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final stage", len(stages))
	}
	final := stages[len(stages)-1]
	var facts imageFacts

	// The build stage: a static, reproducible build of ./cmd/winback.
	var build *dockerStage
	for i := range stages[:len(stages)-1] {
		for _, run := range stages[i].all("RUN") {
			if strings.Contains(run, "go build") {
				build = &stages[i]
				for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags=\"-s -w\"", "--mount=type=cache,target=/go/pkg/mod", "./cmd/winback"} {
					if !strings.Contains(run, want) {
						t.Errorf("Dockerfile: go build step lacks %s: %s", want, run)
					}
				}
			}
		}
	}
	if build == nil {
		t.Fatal("Dockerfile: no stage runs go build")
	}
	if !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("Dockerfile: build stage FROM %s, want golang:<version>", build.from)
	}
	if build.name == "" {
		t.Error("Dockerfile: the build stage has no name (FROM ... AS build)")
	}
	mainDir := filepath.Join(root, "cmd", "winback")
	mains, _ := filepath.Glob(filepath.Join(mainDir, "*.go"))
	isMain := false
	for _, f := range mains {
		b, _ := os.ReadFile(f)
		if regexp.MustCompile(`(?m)^package main$`).Match(b) {
			isMain = true
		}
	}
	if !isMain {
		t.Errorf("Dockerfile builds ./cmd/winback, but %s holds no package main", mainDir)
	}

	// The final stage: distroless or scratch, non-root, the binary as entrypoint.
	if !strings.Contains(final.from, "distroless/static") && final.from != "scratch" {
		t.Errorf("Dockerfile: final stage FROM %s, want distroless static or scratch", final.from)
	}
	user, ok := final.last("USER")
	if !ok {
		t.Fatal("Dockerfile: the final stage has no USER")
	}
	u, g, _ := strings.Cut(user, ":")
	var err error
	if facts.uid, err = strconv.Atoi(u); err != nil || facts.uid == 0 {
		t.Errorf("Dockerfile: USER %q, want a numeric non-root uid (Kubernetes runAsNonRoot checks a number)", user)
	}
	if g != "" {
		if facts.gid, err = strconv.Atoi(g); err != nil {
			t.Errorf("Dockerfile: USER %q: bad gid", user)
		}
	}
	copied := ""
	for _, c := range final.all("COPY") {
		f := strings.Fields(c)
		if len(f) >= 3 && f[0] == "--from="+build.name {
			copied = f[len(f)-1]
		}
	}
	ep, _ := final.last("ENTRYPOINT")
	if err := jsonArray(ep, &facts.entrypoint); err != nil || len(facts.entrypoint) != 1 {
		t.Errorf("Dockerfile: ENTRYPOINT %s, want the exec form [\"/winback\"] (%v)", ep, err)
	} else if facts.entrypoint[0] != copied {
		t.Errorf("Dockerfile: ENTRYPOINT %s is not the binary copied from the build stage (%q)", ep, copied)
	}
	cmd, _ := final.last("CMD")
	if err := jsonArray(cmd, &facts.cmd); err != nil || len(facts.cmd) == 0 {
		t.Errorf("Dockerfile: CMD %s, want the exec form [\"run\"] (%v)", cmd, err)
	}
	expose, _ := final.last("EXPOSE")
	if facts.port, err = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(expose), "/tcp")); err != nil {
		t.Errorf("Dockerfile: EXPOSE %q: want one port", expose)
	}
	for _, env := range final.all("ENV") {
		if v, ok := strings.CutPrefix(env, "WINBACK_HTTP_ADDR="); ok {
			facts.httpAddr = v
		}
	}
	if facts.httpAddr == "" {
		t.Error("Dockerfile: the final stage does not set WINBACK_HTTP_ADDR (winback's default 127.0.0.1:8080 is unreachable from outside a container)")
	} else if p := httpPort(t, facts.httpAddr); p != facts.port {
		t.Errorf("Dockerfile: EXPOSE %d but WINBACK_HTTP_ADDR=%s", facts.port, facts.httpAddr)
	}
	if _, ok := final.last("HEALTHCHECK"); ok {
		t.Error("Dockerfile: HEALTHCHECK in a distroless image cannot run (no shell, no HTTP client)")
	}
	return facts
}

func jsonArray(s string, out *[]string) error {
	return yaml.Unmarshal([]byte(s), out) // a JSON array is YAML
}

func TestDockerfile(t *testing.T) {
	img := dockerImage(t)
	cli := readBinaryCLI(t)
	if len(img.cmd) == 0 || !slices.Contains(cli.commands, img.cmd[0]) {
		t.Errorf("Dockerfile: CMD %q is not a winback command (%q)", img.cmd, cli.commands)
	}
	// The image's env alone must be a valid configuration.
	if _, err := loadLikeWinback(t, cli, img.cmd, map[string]string{"WINBACK_HTTP_ADDR": img.httpAddr}, nil); err != nil {
		t.Errorf("Dockerfile: CMD %q with its ENV does not load: %v", img.cmd, err)
	}
}

func TestDockerignore(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	// What `go build ./cmd/winback` needs: go.mod, go.sum and every
	// top-level directory with Go code of this module.
	need := []string{"go.mod", "go.sum"}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), "go.mod")); err == nil {
			continue // a separate module (bench)
		}
		hasGo := false
		_ = filepath.WalkDir(filepath.Join(root, e.Name()), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				hasGo = true
				return filepath.SkipAll
			}
			return nil
		})
		if hasGo && e.Name() != "deploy" {
			need = append(need, e.Name())
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		pat := strings.TrimSpace(line)
		if pat == "" || strings.HasPrefix(pat, "#") || strings.HasPrefix(pat, "!") {
			continue
		}
		for _, n := range need {
			if ok, _ := filepath.Match(strings.TrimSuffix(pat, "/"), n); ok {
				t.Errorf(".dockerignore: %q excludes %s, which the build needs", pat, n)
			}
		}
	}
	if !slices.Contains(need, "cmd") || !slices.Contains(need, "config") {
		t.Errorf("expected cmd and config among the needed directories, got %q", need)
	}
}
