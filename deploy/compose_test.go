package deploy

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/config"
)

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     stringList        `yaml:"command"`
	Entrypoint  stringList        `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test stringList `yaml:"test"`
	} `yaml:"healthcheck"`
	Profiles        []string `yaml:"profiles"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Restart         string   `yaml:"restart"`
	Ulimits         any      `yaml:"ulimits"`
}

// isWinback says whether the service runs the winback image.
func (s composeService) isWinback() bool {
	return s.Build != nil || strings.HasPrefix(s.Image, "winback:")
}

// env is the environment of the service's container: the image's ENV,
// then the service's.
func (s composeService) env(img imageFacts) map[string]string {
	env := map[string]string{"WINBACK_HTTP_ADDR": img.httpAddr}
	for k, v := range s.Environment {
		env[k] = v
	}
	return env
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	return decodeYAMLOne[composeFile](t, "compose.yaml")
}

// mount returns the host path (relative to deploy/) of a bind mount to
// the container path target, or "".
func (s composeService) mount(target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target && (strings.HasPrefix(parts[0], "./") || strings.HasPrefix(parts[0], "../")) {
			return parts[0]
		}
	}
	return ""
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	idx := newSettingsIndex()
	cli := readBinaryCLI(t)
	img := dockerImage(t)
	root := repoRoot(t)

	for _, name := range []string{"redpanda", "topic-init", "clickhouse", "winback", "gen", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose: no service %q", name)
		}
	}
	if g := c.Services["gen"]; !slices.Contains(g.Profiles, "demo") {
		t.Errorf("compose: gen has profiles %q, want demo", g.Profiles)
	}

	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("compose: %s has neither image nor build", name)
		}
		if s.Image != "" && !strings.HasPrefix(s.Image, "winback:") && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("compose: %s image %q: pin a version", name, s.Image)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("compose: %s builds %s/%s: %v", name, s.Build.Context, s.Build.Dockerfile, err)
			}
			if abs, _ := filepath.Abs(s.Build.Context); abs != root {
				t.Errorf("compose: %s build context %s is not the repo root", name, s.Build.Context)
			}
		}
		for dep, d := range s.DependsOn {
			ds, ok := c.Services[dep]
			if !ok {
				t.Errorf("compose: %s depends on unknown service %s", name, dep)
				continue
			}
			switch d.Condition {
			case "service_healthy":
				if ds.Healthcheck == nil || len(ds.Healthcheck.Test) == 0 {
					t.Errorf("compose: %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if ds.Restart != "no" {
					t.Errorf("compose: %s waits for %s to complete, but %s restarts (%q)", name, dep, dep, ds.Restart)
				}
			case "service_started":
			default:
				t.Errorf("compose: %s depends on %s with condition %q", name, dep, d.Condition)
			}
			if len(ds.Profiles) > 0 && !slices.Equal(ds.Profiles, s.Profiles) {
				t.Errorf("compose: %s depends on %s, which only runs in profiles %q", name, dep, ds.Profiles)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("compose: %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok && !strings.HasPrefix(src, "/") {
				t.Errorf("compose: %s mounts volume %s, which is not declared", name, src)
			}
		}

		if !s.isWinback() {
			continue
		}
		for _, err := range idx.checkEnvNames(s.Environment) {
			t.Errorf("compose: %s: %v", name, err)
		}
		args := []string(s.Command)
		if len(args) == 0 {
			args = img.cmd
		}
		cfg, err := loadLikeWinback(t, cli, args, s.env(img), nil)
		if err != nil {
			t.Errorf("compose: %s: `winback %s` with its environment does not load: %v", name, strings.Join(args, " "), err)
			continue
		}
		if args[0] != "run" {
			continue
		}
		port := httpPort(t, cfg.HTTPAddr)
		published := false
		for _, p := range s.Ports {
			if strings.HasSuffix(p, ":"+strconv.Itoa(port)) {
				published = true
			}
		}
		if !published {
			t.Errorf("compose: %s listens on %s but publishes %q", name, cfg.HTTPAddr, s.Ports)
		}
		if s.StopGracePeriod == "" {
			t.Errorf("compose: %s has no stop_grace_period; docker's default 10s is below shutdown_timeout %s", name, cfg.ShutdownTimeout)
		} else if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= cfg.ShutdownTimeout {
			t.Errorf("compose: %s stop_grace_period %s must exceed shutdown_timeout %s", name, s.StopGracePeriod, cfg.ShutdownTimeout)
		}
		for _, dep := range []string{"redpanda", "clickhouse", "topic-init"} {
			if _, ok := s.DependsOn[dep]; !ok {
				t.Errorf("compose: %s does not wait for %s", name, dep)
			}
		}
		checkComposeEndpoints(t, c, name, cfg)
	}
}

// checkComposeEndpoints checks that the winback service's brokers,
// registry and ClickHouse are compose services.
func checkComposeEndpoints(t *testing.T, c composeFile, name string, cfg *config.Config) {
	t.Helper()
	for _, b := range cfg.Kafka.Brokers {
		host, _, _ := net.SplitHostPort(b)
		if _, ok := c.Services[host]; !ok {
			t.Errorf("compose: %s: broker %s is not a service", name, b)
		}
	}
	for setting, raw := range map[string]string{"registry.url": cfg.Registry.URL, "clickhouse.dsn": cfg.ClickHouse.DSN} {
		host := raw
		if _, after, ok := strings.Cut(host, "://"); ok {
			host = after
		}
		if _, after, ok := strings.Cut(host, "@"); ok {
			host = after
		}
		host, _, _ = strings.Cut(host, "/")
		host, _, _ = strings.Cut(host, ":")
		if _, ok := c.Services[host]; !ok {
			t.Errorf("compose: %s: %s %s does not point at a service", name, setting, raw)
		}
	}
	if u := c.Services["clickhouse"].Environment["CLICKHOUSE_USER"]; u != "" && !strings.Contains(cfg.ClickHouse.DSN, "://"+u+":"+c.Services["clickhouse"].Environment["CLICKHOUSE_PASSWORD"]+"@") {
		t.Errorf("compose: %s: clickhouse.dsn %s does not use the user/password the clickhouse service creates", name, cfg.ClickHouse.DSN)
	}
}

// rpkTopics parses the `rpk topic create` lines of a shell script into
// topic -> partitions and topic -> configs.
func rpkTopics(script string) (parts map[string]int, configs map[string]map[string]string, err error) {
	parts, configs = map[string]int{}, map[string]map[string]string{}
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "rpk" || f[1] != "topic" || f[2] != "create" {
			continue
		}
		var topics []string
		p := -1
		conf := map[string]string{}
		for i := 3; i < len(f); i++ {
			switch a := f[i]; {
			case a == "-p" || a == "--partitions":
				i++
				if i >= len(f) {
					return nil, nil, fmt.Errorf("%q: -p without a value", line)
				}
				if p, err = strconv.Atoi(f[i]); err != nil {
					return nil, nil, fmt.Errorf("%q: %w", line, err)
				}
			case a == "-c" || a == "--topic-config":
				i++
				if i >= len(f) {
					return nil, nil, fmt.Errorf("%q: -c without a value", line)
				}
				k, v, _ := strings.Cut(f[i], "=")
				conf[k] = v
			case a == "-r" || a == "--replicas" || a == "-X" || a == "--config-opt" || a == "--profile" || a == "--config":
				i++
			case strings.HasPrefix(a, "-"):
			default:
				topics = append(topics, a)
			}
		}
		for _, tp := range topics {
			if _, dup := parts[tp]; dup {
				return nil, nil, fmt.Errorf("topic %s created twice", tp)
			}
			parts[tp], configs[tp] = p, conf
		}
	}
	return parts, configs, nil
}

func TestComposeTopics(t *testing.T) {
	c := loadCompose(t)
	init := c.Services["topic-init"]
	parts, configs, err := rpkTopics(strings.Join(init.Command, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cli := readBinaryCLI(t)
	img := dockerImage(t)
	w := c.Services["winback"]
	cfg, err := loadLikeWinback(t, cli, w.Command, w.env(img), nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := cfg.Topics
	for _, name := range []string{tp.Orders, tp.Email, tp.Support, tp.Triggers, tp.DLQ, tp.State} {
		if _, ok := parts[name]; !ok {
			t.Errorf("topic-init does not create %s (created: %v)", name, parts)
		}
	}
	// Co-partitioning: a task is partition p of each input and of the changelog.
	n := parts[tp.Orders]
	if n < 1 {
		t.Errorf("topic-init: %s has %d partitions; give -p", tp.Orders, n)
	}
	for _, name := range []string{tp.Email, tp.Support, tp.State} {
		if parts[name] != n {
			t.Errorf("topic-init: %s has %d partitions, %s has %d: inputs and changelog must be co-partitioned", name, parts[name], tp.Orders, n)
		}
	}
	if got := configs[tp.State]["cleanup.policy"]; got != "compact" {
		t.Errorf("topic-init: %s cleanup.policy=%q, want compact", tp.State, got)
	}
	for _, name := range []string{tp.Orders, tp.Email, tp.Support, tp.Triggers, tp.DLQ} {
		if got := configs[name]["cleanup.policy"]; got == "compact" {
			t.Errorf("topic-init: %s must not be compacted", name)
		}
	}
	if ms, err := strconv.ParseInt(configs[tp.DLQ]["retention.ms"], 10, 64); err != nil || time.Duration(ms)*time.Millisecond < 7*24*time.Hour {
		t.Errorf("topic-init: %s retention.ms=%q; keep dead letters at least 7 days", tp.DLQ, configs[tp.DLQ]["retention.ms"])
	}
	if cfg.Topics.Partitions != 0 {
		t.Errorf("compose: winback creates topics itself (topics.partitions=%d) although topic-init does", cfg.Topics.Partitions)
	}
}

func TestRpkTopics(t *testing.T) {
	parts, configs, err := rpkTopics("set -e\nrpk topic create a b -p 6 -r 1 --if-not-exists -X brokers=x:9092\n  rpk topic create s -c cleanup.policy=compact -p 6\necho done")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 || parts["a"] != 6 || parts["b"] != 6 || parts["s"] != 6 || configs["s"]["cleanup.policy"] != "compact" {
		t.Errorf("parts %v configs %v", parts, configs)
	}
	if _, _, err := rpkTopics("rpk topic create a\nrpk topic create a"); err == nil {
		t.Error("a topic created twice was accepted")
	}
}

type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestComposePrometheus(t *testing.T) {
	c := loadCompose(t)
	prom := c.Services["prometheus"]
	cfgPath := prom.mount("/etc/prometheus/prometheus.yml")
	if cfgPath == "" {
		t.Fatal("compose: prometheus does not mount a prometheus.yml at /etc/prometheus/prometheus.yml")
	}
	pc := decodeYAMLOne[promConfig](t, cfgPath)
	if len(pc.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule file")
	}
	for _, rf := range pc.RuleFiles {
		src := prom.mount(rf)
		if src == "" {
			t.Errorf("prometheus.yml loads %s, which compose does not mount", rf)
			continue
		}
		if filepath.Clean(src) != filepath.Join("prometheus", "alerts.yaml") {
			t.Errorf("prometheus.yml rule file %s is %s, want prometheus/alerts.yaml", rf, src)
		}
	}
	cli := readBinaryCLI(t)
	img := dockerImage(t)
	scraped := false
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "winback" {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("prometheus.yml: winback metrics_path %s, want /metrics", sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("prometheus.yml: target %q: %v", target, err)
					continue
				}
				s, ok := c.Services[host]
				if !ok || !s.isWinback() {
					t.Errorf("prometheus.yml: target %s is not a winback service", target)
					continue
				}
				cfg, err := loadLikeWinback(t, cli, s.Command, s.env(img), nil)
				if err != nil {
					t.Fatal(err)
				}
				if strconv.Itoa(httpPort(t, cfg.HTTPAddr)) != port {
					t.Errorf("prometheus.yml: target %s, but %s listens on %s", target, host, cfg.HTTPAddr)
				}
				scraped = true
			}
		}
	}
	if !scraped {
		t.Error("prometheus.yml has no winback job scraping a compose service")
	}
}

func TestComposeGrafana(t *testing.T) {
	c := loadCompose(t)
	g := c.Services["grafana"]
	prov := g.mount("/etc/grafana/provisioning")
	if prov == "" {
		t.Fatal("compose: grafana does not mount a provisioning directory at /etc/grafana/provisioning")
	}
	type dsFile struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			IsDefault            bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	files, _ := filepath.Glob(filepath.Join(prov, "datasources", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("grafana provisioning: no datasources/*.yaml")
	}
	promDS := 0
	for _, f := range files {
		for _, ds := range decodeYAMLOne[dsFile](t, f).Datasources {
			if ds.Type != "prometheus" {
				continue
			}
			promDS++
			host := strings.TrimPrefix(ds.URL, "http://")
			host, port, _ := strings.Cut(host, ":")
			if _, ok := c.Services[host]; !ok || host != "prometheus" || strings.TrimSuffix(port, "/") != "9090" {
				t.Errorf("grafana datasource %s points at %s, want http://prometheus:9090", ds.Name, ds.URL)
			}
		}
	}
	if promDS != 1 {
		t.Errorf("grafana provisioning: %d Prometheus datasources, want 1", promDS)
	}

	type dashFile struct {
		Providers []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	files, _ = filepath.Glob(filepath.Join(prov, "dashboards", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("grafana provisioning: no dashboards/*.yaml")
	}
	found := false
	for _, f := range files {
		for _, p := range decodeYAMLOne[dashFile](t, f).Providers {
			src := g.mount(path.Join(p.Options.Path, "winback.json"))
			if p.Type == "file" && src != "" {
				if filepath.Clean(src) != filepath.Join("grafana", "winback.json") {
					t.Errorf("grafana mounts %s as the dashboard, want grafana/winback.json", src)
				}
				found = true
			}
		}
	}
	if !found {
		t.Error("no grafana dashboard provider reads the mounted winback.json")
	}
}
