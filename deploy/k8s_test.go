package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winback/winback/config"
)

// k8sObject is the part of a manifest every check needs; raw keeps the rest.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretKeyRef"`
		ConfigMapKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"configMapKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []envVar `yaml:"env"`
	EnvFrom []any    `yaml:"envFrom"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe    *probe `yaml:"startupProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		RunAsGroup               *int  `yaml:"runAsGroup"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type statefulSet struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Replicas            int           `yaml:"replicas"`
		ServiceName         string        `yaml:"serviceName"`
		PodManagementPolicy string        `yaml:"podManagementPolicy"`
		Selector            labelSelector `yaml:"selector"`
		UpdateStrategy      struct {
			Type          string `yaml:"type"`
			RollingUpdate *struct {
				MaxUnavailable any `yaml:"maxUnavailable"`
				Partition      any `yaml:"partition"`
			} `yaml:"rollingUpdate"`
		} `yaml:"updateStrategy"`
		VolumeClaimTemplates []any `yaml:"volumeClaimTemplates"`
		Template             struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    *int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				TopologySpreadConstraints []struct {
					MaxSkew           int           `yaml:"maxSkew"`
					TopologyKey       string        `yaml:"topologyKey"`
					WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
					LabelSelector     labelSelector `yaml:"labelSelector"`
				} `yaml:"topologySpreadConstraints"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name  string `yaml:"name"`
						Items []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
					EmptyDir any `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// k8sManifests reads every manifest in k8s/ (all documents of every
// *.yaml but kustomization.yaml), keyed by kind/name, as raw nodes.
func k8sManifests(t *testing.T) map[string]yaml.Node {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/ (%v)", err)
	}
	out := map[string]yaml.Node{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, n := range decodeYAMLFile[yaml.Node](t, f) {
			var o k8sObject
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document lacks apiVersion, kind or metadata.name", f)
			}
			if o.Metadata.Namespace != "" {
				t.Errorf("%s: %s/%s sets namespace %q; the manifests are namespace-agnostic", f, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			key := o.Kind + "/" + o.Metadata.Name
			if _, dup := out[key]; dup {
				t.Errorf("%s: %s defined twice", f, key)
			}
			out[key] = n
		}
	}
	return out
}

func decodeNode[T any](t *testing.T, n yaml.Node) T {
	t.Helper()
	var v T
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func manifest[T any](t *testing.T, all map[string]yaml.Node, key string) T {
	t.Helper()
	n, ok := all[key]
	if !ok {
		t.Fatalf("k8s: no %s", key)
	}
	return decodeNode[T](t, n)
}

func selects(sel labelSelector, labels map[string]string) bool {
	if len(sel.MatchLabels) == 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKustomization(t *testing.T) {
	type kust struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Resources  []string `yaml:"resources"`
		Namespace  string   `yaml:"namespace"`
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	k := decodeYAMLOne[kust](t, filepath.Join("k8s", "kustomization.yaml"))
	if k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml kind %q", k.Kind)
	}
	if k.Namespace != "" {
		t.Errorf("kustomization.yaml sets namespace %q; leave it to an overlay or the current context", k.Namespace)
	}
	for _, want := range []string{"configmap.yaml", "statefulset.yaml", "service.yaml", "pdb.yaml", "networkpolicy.yaml"} {
		if !slices.Contains(k.Resources, want) {
			t.Errorf("kustomization.yaml does not list %s", want)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join("k8s", r)); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
		if strings.Contains(r, "secret") {
			t.Errorf("kustomization.yaml applies %s: the example Secret would overwrite the real one", r)
		}
	}
	all := k8sManifests(t)
	d := manifest[statefulSet](t, all, "StatefulSet/winback")
	for _, c := range d.Spec.Template.Spec.Containers {
		ok := false
		for _, img := range k.Images {
			ok = ok || img.Name == c.Image
		}
		if !ok {
			t.Errorf("kustomization.yaml has no images entry for container image %q", c.Image)
		}
	}
}

func TestStatefulSet(t *testing.T) {
	all := k8sManifests(t)
	d := manifest[statefulSet](t, all, "StatefulSet/winback")
	spec := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Metadata.Labels
	img := dockerImage(t)
	cli := readBinaryCLI(t)
	idx := newSettingsIndex()

	if d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", d.Spec.Replicas)
	}
	if !selects(d.Spec.Selector, podLabels) {
		t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	// A StatefulSet's rolling update replaces one pod at a time and waits
	// for it to be ready; maxUnavailable (a feature gate) would undo that,
	// and partition would hold pods back from updating.
	if us := d.Spec.UpdateStrategy; us.Type != "RollingUpdate" || (us.RollingUpdate != nil && (us.RollingUpdate.MaxUnavailable != nil || us.RollingUpdate.Partition != nil)) {
		t.Errorf("updateStrategy %+v: want RollingUpdate, one pod at a time, no partition", us)
	}
	if d.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy %q: want Parallel (pods wait for no other pod; the group assigns the work)", d.Spec.PodManagementPolicy)
	}
	if len(d.Spec.VolumeClaimTemplates) != 0 {
		t.Error("volumeClaimTemplates: winback keeps its state in the changelog topic, not on disk")
	}
	if a := d.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v: want prometheus.io/scrape \"true\" and path /metrics", a)
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		if !selects(tsc.LabelSelector, podLabels) || tsc.MaxSkew < 1 || tsc.TopologyKey == "" {
			t.Errorf("topologySpreadConstraint %+v does not spread the winback pods", tsc)
		}
	}
	if sc := spec.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != img.uid {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser %d (the Dockerfile's USER)", sc, img.uid)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Command) > 0 {
		t.Errorf("container overrides the image ENTRYPOINT with command %q; use args", c.Command)
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("container securityContext %+v: want readOnlyRootFilesystem, no privilege escalation, drop ALL, runAsNonRoot", sc)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser != img.uid {
		t.Errorf("container runAsUser %d, Dockerfile USER %d", *sc.RunAsUser, img.uid)
	}
	if sc.RunAsGroup != nil && img.gid != 0 && *sc.RunAsGroup != img.gid {
		t.Errorf("container runAsGroup %d, Dockerfile USER group %d", *sc.RunAsGroup, img.gid)
	}
	if len(c.EnvFrom) > 0 {
		t.Error("envFrom: list the variables one by one so that the test can check them")
	}

	// Resolve the environment as the kubelet would, with the example
	// Secret's values.
	secrets := exampleSecrets(t)
	env := map[string]string{"WINBACK_HTTP_ADDR": img.httpAddr} // the image's ENV
	instanceFromPod := false
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			if e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("env %s from field %s; only metadata.name is expected", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = "winback-5c9d7f6b8-x2x7q"
			instanceFromPod = instanceFromPod || e.Name == "WINBACK_KAFKA_INSTANCE_ID"
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				t.Errorf("env %s: secret %s has no key %s in secret.example.yaml", e.Name, ref.Name, ref.Key)
				continue
			}
			if v != "" || !ref.Optional {
				env[e.Name] = v
			}
		default:
			t.Errorf("env %s: unexpected valueFrom", e.Name)
		}
	}
	for _, err := range idx.checkEnvNames(env) {
		t.Error(err)
	}
	if !instanceFromPod {
		t.Error("WINBACK_KAFKA_INSTANCE_ID is not set from metadata.name: transactional ids must be unique per pod")
	}
	for _, name := range []string{"WINBACK_KAFKA_SASL_PASSWORD", "WINBACK_CLICKHOUSE_DSN"} {
		found := false
		for _, e := range c.Env {
			if e.Name == name {
				found = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
			}
		}
		if !found {
			t.Errorf("%s does not come from a Secret", name)
		}
	}

	// The configuration: ConfigMap file + env + args, loaded like winback does.
	files := map[string]string{}
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				for _, it := range v.Secret.Items {
					data, ok := secrets[v.Secret.SecretName][it.Key]
					if !ok {
						t.Errorf("volume %s: secret %s has no key %s in secret.example.yaml", v.Name, v.Secret.SecretName, it.Key)
					}
					files[path.Join(m.MountPath, it.Path)] = data
				}
				if !m.ReadOnly {
					t.Errorf("secret volume mount %s is not readOnly", m.MountPath)
				}
			}
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := manifest[configMap](t, all, "ConfigMap/"+v.ConfigMap.Name)
			for _, it := range v.ConfigMap.Items {
				data, ok := cm.Data[it.Key]
				if !ok {
					t.Errorf("volume %s: ConfigMap %s has no key %s", v.Name, v.ConfigMap.Name, it.Key)
				}
				files[path.Join(m.MountPath, it.Path)] = data
			}
			if !m.ReadOnly {
				t.Errorf("config volume mount %s is not readOnly", m.MountPath)
			}
		}
	}
	args := c.Args
	if len(args) == 0 {
		args = img.cmd
	}
	if args[0] != "run" {
		t.Errorf("args %q: the StatefulSet must run `winback run`", args)
	}
	if !slices.Contains(args, "--config") && env["WINBACK_CONFIG"] == "" {
		t.Errorf("args %q do not pass --config: the ConfigMap is not used", args)
	}
	cfg, err := loadLikeWinback(t, cli, args, env, files)
	if err != nil {
		t.Fatalf("winback %s with the StatefulSet's env and ConfigMap does not load: %v", strings.Join(args, " "), err)
	}

	// Customer state is personal data: the pods require a bearer token,
	// read from a file the Secret provides, and do not serve pprof.
	if cfg.HTTPTokenFile == "" {
		t.Error("http_token_file is not set: /v1/customers/{id} would answer anyone")
	} else if tok, ok := files[cfg.HTTPTokenFile]; !ok {
		t.Errorf("http_token_file %s is not a file a Secret volume provides", cfg.HTTPTokenFile)
	} else if len(strings.TrimSpace(tok)) < 16 {
		t.Errorf("the example token is %d characters; winback requires at least 16", len(strings.TrimSpace(tok)))
	}
	if cfg.HTTPPprof {
		t.Error("http_pprof is on in the StatefulSet; enable it per pod when profiling")
	}

	// Ports and probes against the loaded configuration.
	port := httpPort(t, cfg.HTTPAddr)
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port || c.Ports[0].Name != "http" {
		t.Errorf("container ports %+v, want one named http on %d (from http_addr %s)", c.Ports, port, cfg.HTTPAddr)
	}
	if port != img.port {
		t.Errorf("container port %d, Dockerfile EXPOSE %d", port, img.port)
	}
	if a := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]; a != strconv.Itoa(port) {
		t.Errorf("prometheus.io/port %q, want %d", a, port)
	}
	checkProbe := func(name string, p *probe, wantPath string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", name)
			return
		}
		if p.HTTPGet.Path != wantPath {
			t.Errorf("%s path %s, want %s", name, p.HTTPGet.Path, wantPath)
		}
		if s := fmt.Sprint(p.HTTPGet.Port); s != "http" && s != strconv.Itoa(port) {
			t.Errorf("%s port %s, want http or %d", name, s, port)
		}
	}
	checkProbe("livenessProbe", c.LivenessProbe, "/healthz")
	checkProbe("readinessProbe", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		checkProbe("startupProbe", c.StartupProbe, "/healthz")
	}

	// Graceful shutdown: the kubelet must wait longer than winback does.
	grace := spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Error("terminationGracePeriodSeconds unset (30s default is not above the 30s shutdown_timeout)")
	} else {
		g := time.Duration(*grace) * time.Second
		if def := config.Default().ShutdownTimeout; g <= def {
			t.Errorf("terminationGracePeriodSeconds %s <= default shutdown_timeout %s", g, def)
		}
		if g <= cfg.ShutdownTimeout {
			t.Errorf("terminationGracePeriodSeconds %s <= configured shutdown_timeout %s", g, cfg.ShutdownTimeout)
		}
	}

	// Resources: set, and GOMEMLIMIT below the memory limit.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("resources.requests.%s unset", r)
		}
	}
	limit, err := parseQuantity(c.Resources.Limits["memory"])
	if err != nil {
		t.Errorf("resources.limits.memory: %v", err)
	}
	if req, err := parseQuantity(c.Resources.Requests["memory"]); err != nil || req > limit {
		t.Errorf("memory request %q above limit %q (%v)", c.Resources.Requests["memory"], c.Resources.Limits["memory"], err)
	}
	if v, ok := env["GOMEMLIMIT"]; ok {
		gml, err := parseGoMemLimit(v)
		if err != nil {
			t.Errorf("GOMEMLIMIT %q: %v", v, err)
		} else if gml >= limit || float64(gml) < 0.7*float64(limit) {
			t.Errorf("GOMEMLIMIT %s is not 70-99%% of the memory limit %s", v, c.Resources.Limits["memory"])
		}
	}
	hasTmp := false
	for _, m := range c.VolumeMounts {
		hasTmp = hasTmp || m.MountPath == "/tmp"
	}
	if !hasTmp {
		t.Error("no writable /tmp under a read-only root filesystem")
	}
}

type configMap struct {
	k8sObject `yaml:",inline"`
	Data      map[string]string `yaml:"data"`
}

// exampleSecrets reads secret.example.yaml: secret name -> key -> value.
func exampleSecrets(t *testing.T) map[string]map[string]string {
	t.Helper()
	type secret struct {
		k8sObject  `yaml:",inline"`
		StringData map[string]string `yaml:"stringData"`
	}
	out := map[string]map[string]string{}
	for _, s := range decodeYAMLFile[secret](t, filepath.Join("k8s", "secret.example.yaml")) {
		if s.Kind != "Secret" {
			t.Errorf("secret.example.yaml holds a %s", s.Kind)
		}
		out[s.Metadata.Name] = s.StringData
	}
	return out
}

func TestConfigMapKeys(t *testing.T) {
	all := k8sManifests(t)
	cm := manifest[configMap](t, all, "ConfigMap/winback-config")
	data, ok := cm.Data["winback.yaml"]
	if !ok {
		t.Fatal("ConfigMap winback-config has no winback.yaml")
	}
	// Unknown keys fail (KnownFields), so a typo cannot leave a default.
	cfg := config.Default()
	if err := config.LoadYAML(strings.NewReader(data), &cfg); err != nil {
		t.Fatalf("winback.yaml: %v", err)
	}
	// Every leaf key is a setting.
	var tree map[string]any
	if err := yaml.Unmarshal([]byte(data), &tree); err != nil {
		t.Fatal(err)
	}
	idx := newSettingsIndex()
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := strings.TrimPrefix(prefix+"."+k, ".")
			if sub, ok := v.(map[string]any); ok {
				walk(key, sub)
				continue
			}
			if idx.key[key] == nil {
				t.Errorf("winback.yaml: %s is not a setting", key)
			}
		}
	}
	walk("", tree)
	def := config.Default()
	if cfg.Kafka.SASL.Password != "" || cfg.Registry.Password != "" {
		t.Error("winback.yaml holds a password; passwords come from the Secret")
	}
	if cfg.ClickHouse.DSN != def.ClickHouse.DSN {
		t.Error("winback.yaml sets the ClickHouse DSN, which carries a password; it comes from the Secret")
	}
	if cfg.Kafka.InstanceID != "" {
		t.Error("winback.yaml sets kafka.instance_id: every pod would share one transactional id")
	}
}

func TestServiceAndPDB(t *testing.T) {
	all := k8sManifests(t)
	d := manifest[statefulSet](t, all, "StatefulSet/winback")
	podLabels := d.Spec.Template.Metadata.Labels

	type service struct {
		k8sObject `yaml:",inline"`
		Spec      struct {
			ClusterIP string            `yaml:"clusterIP"`
			Selector  map[string]string `yaml:"selector"`
			Ports     []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	s := manifest[service](t, all, "Service/winback")
	if !selects(labelSelector{MatchLabels: s.Spec.Selector}, podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", s.Spec.Selector, podLabels)
	}
	// The StatefulSet's governing Service must exist and be headless, or
	// the pods get no stable DNS names.
	gov := manifest[service](t, all, "Service/"+d.Spec.ServiceName)
	if gov.Spec.ClusterIP != "None" || !selects(labelSelector{MatchLabels: gov.Spec.Selector}, podLabels) {
		t.Errorf("governing Service %s: clusterIP %q, selector %v; want a headless Service selecting the pods", d.Spec.ServiceName, gov.Spec.ClusterIP, gov.Spec.Selector)
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8080 || s.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports %+v, want http 8080", s.Spec.Ports)
	} else {
		tp := fmt.Sprint(s.Spec.Ports[0].TargetPort)
		ok := false
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			ok = ok || tp == p.Name || tp == strconv.Itoa(p.ContainerPort)
		}
		if !ok {
			t.Errorf("Service targetPort %s is no container port", tp)
		}
	}

	type pdb struct {
		k8sObject `yaml:",inline"`
		Spec      struct {
			MaxUnavailable any           `yaml:"maxUnavailable"`
			MinAvailable   any           `yaml:"minAvailable"`
			Selector       labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	p := manifest[pdb](t, all, "PodDisruptionBudget/winback")
	if p.APIVersion != "policy/v1" {
		t.Errorf("PodDisruptionBudget apiVersion %s, want policy/v1", p.APIVersion)
	}
	if fmt.Sprint(p.Spec.MaxUnavailable) != "1" || p.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: maxUnavailable %v, minAvailable %v; want maxUnavailable 1 only", p.Spec.MaxUnavailable, p.Spec.MinAvailable)
	}
	if !selects(p.Spec.Selector, podLabels) || len(p.Spec.Selector.MatchLabels) != len(d.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget selector %v, want the StatefulSet's %v", p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
	}
}

var quantityRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$`)

// parseQuantity parses the Kubernetes memory quantities used here.
func parseQuantity(s string) (int64, error) {
	m := quantityRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a quantity such as 2Gi", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[m[2]]
	return int64(f * mult), nil
}

var goMemLimitRe = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`)

// parseGoMemLimit parses GOMEMLIMIT as the Go runtime does.
func parseGoMemLimit(s string) (int64, error) {
	m := goMemLimitRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q: the Go runtime takes a number with B, KiB, MiB, GiB or TiB", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n * map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]], nil
}

func TestQuantities(t *testing.T) {
	f := func(got int64, err error, want int64) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("got %d, %v; want %d", got, err, want)
		}
	}
	q := func(s string) (int64, error) { return parseQuantity(s) }
	g := func(s string) (int64, error) { return parseGoMemLimit(s) }
	v, err := q("2Gi")
	f(v, err, 2<<30)
	v, err = q("1.5G")
	f(v, err, 1_500_000_000)
	v, err = g("1800MiB")
	f(v, err, 1800<<20)
	if _, err := g("1.8GiB"); err == nil {
		t.Error("GOMEMLIMIT 1.8GiB accepted; the Go runtime rejects it")
	}
	if _, err := q("2GB"); err == nil {
		t.Error("quantity 2GB accepted")
	}
}

// TestNetworkPolicy checks that a NetworkPolicy guards the winback pods'
// HTTP port: it selects the StatefulSet's pods, restricts ingress, and every
// rule names its sources (a rule without one would let anyone in) and only
// the http port.
func TestNetworkPolicy(t *testing.T) {
	type peer struct {
		PodSelector       *labelSelector `yaml:"podSelector"`
		NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
		IPBlock           any            `yaml:"ipBlock"`
	}
	type networkPolicy struct {
		k8sObject `yaml:",inline"`
		Spec      struct {
			PodSelector labelSelector `yaml:"podSelector"`
			PolicyTypes []string      `yaml:"policyTypes"`
			Ingress     []struct {
				From  []peer `yaml:"from"`
				Ports []struct {
					Port     any    `yaml:"port"`
					Protocol string `yaml:"protocol"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
		} `yaml:"spec"`
	}
	all := k8sManifests(t)
	d := manifest[statefulSet](t, all, "StatefulSet/winback")
	np := manifest[networkPolicy](t, all, "NetworkPolicy/winback")
	if np.APIVersion != "networking.k8s.io/v1" {
		t.Errorf("apiVersion %s", np.APIVersion)
	}
	if !selects(np.Spec.PodSelector, d.Spec.Template.Metadata.Labels) {
		t.Errorf("podSelector %v does not select the winback pods %v", np.Spec.PodSelector.MatchLabels, d.Spec.Template.Metadata.Labels)
	}
	if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
		t.Errorf("policyTypes %v: no Ingress, so ingress is not restricted", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) == 0 {
		t.Error("no ingress rule: Prometheus could not scrape /metrics")
	}
	c := d.Spec.Template.Spec.Containers[0]
	portOK := func(p any) bool {
		for _, cp := range c.Ports {
			if fmt.Sprint(p) == cp.Name || fmt.Sprint(p) == strconv.Itoa(cp.ContainerPort) {
				return true
			}
		}
		return false
	}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 {
			t.Errorf("ingress rule %d has no from: it admits every source", i)
		}
		for _, f := range r.From {
			if f.IPBlock != nil {
				t.Errorf("ingress rule %d admits an ipBlock; select pods and namespaces", i)
			}
			if f.PodSelector == nil && f.NamespaceSelector == nil {
				t.Errorf("ingress rule %d has a peer with no selector", i)
			}
			for _, sel := range []*labelSelector{f.PodSelector, f.NamespaceSelector} {
				if sel != nil && len(sel.MatchLabels) == 0 {
					t.Errorf("ingress rule %d has an empty selector: it matches everything", i)
				}
			}
		}
		if len(r.Ports) == 0 {
			t.Errorf("ingress rule %d opens every port", i)
		}
		for _, p := range r.Ports {
			if !portOK(p.Port) {
				t.Errorf("ingress rule %d opens port %v, not the container's http port", i, p.Port)
			}
		}
	}
}
