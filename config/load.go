package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Setting is one leaf of Config: its names in each source and its help text.
type Setting struct {
	Key  string // YAML path, e.g. kafka.brokers
	Flag string // e.g. kafka-brokers
	Env  string // e.g. WINBACK_KAFKA_BROKERS
	Help string
	Type string // string, list, int, float, bool, duration

	v reflect.Value
}

// Value renders the current value the way a flag or env variable takes it.
func (s *Setting) Value() string { return format(s.v) }

var durationType = reflect.TypeFor[time.Duration]()

// Settings lists every leaf of c, bound to c so that setting one changes c.
func Settings(c *Config) []*Setting {
	var out []*Setting
	walk(reflect.ValueOf(c).Elem(), nil, "", &out)
	return out
}

func walk(v reflect.Value, path []string, help string, out *[]*Setting) {
	if v.Kind() == reflect.Struct && v.Type() != durationType {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" || !f.IsExported() {
				continue
			}
			walk(v.Field(i), append(append([]string(nil), path...), key), f.Tag.Get("help"), out)
		}
		return
	}
	s := &Setting{
		Key:  strings.Join(path, "."),
		Flag: strings.ReplaceAll(strings.Join(path, "-"), "_", "-"),
		Env:  "WINBACK_" + strings.ToUpper(strings.Join(path, "_")),
		Help: help,
		v:    v,
	}
	switch {
	case v.Type() == durationType:
		s.Type = "duration"
	case v.Kind() == reflect.String:
		s.Type = "string"
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		s.Type = "list"
	case v.Kind() == reflect.Map:
		s.Type = "map" // YAML only: no flag or env variable
	case v.Kind() == reflect.Bool:
		s.Type = "bool"
	case v.CanInt():
		s.Type = "int"
	case v.CanUint():
		s.Type = "uint"
	case v.CanFloat():
		s.Type = "float"
	default:
		panic(fmt.Sprintf("config: setting %s has unsupported type %s", s.Key, v.Type()))
	}
	*out = append(*out, s)
}

func format(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Map:
		keys := v.MapKeys()
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%v: %v", k.Interface(), v.MapIndex(k).Interface())
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	case v.Kind() == reflect.Float32 || v.Kind() == reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// Set parses text into the setting.
func (s *Setting) Set(text string) error {
	v := s.v
	switch s.Type {
	case "duration":
		d, err := ParseDuration(text)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case "string":
		v.SetString(text)
	case "list":
		items := reflect.MakeSlice(v.Type(), 0, 4)
		for _, p := range strings.Split(text, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = reflect.Append(items, reflect.ValueOf(p).Convert(v.Type().Elem()))
			}
		}
		v.Set(items)
	case "map":
		return fmt.Errorf("%s is a map: set it in the YAML file", s.Key)
	case "bool":
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q is not true or false", text)
		}
		v.SetBool(b)
	case "int":
		n, err := strconv.ParseInt(text, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		v.SetInt(n)
	case "uint":
		n, err := strconv.ParseUint(text, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative whole number", text)
		}
		v.SetUint(n)
	case "float":
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", text)
		}
		v.SetFloat(f)
	}
	return nil
}

// Loader binds a Config to a FlagSet and loads it from every source.
type Loader struct {
	cfg      *Config
	file     string
	settings []*Setting
	// staged flag values, applied after the file and env
	flags map[string]string
}

// Bind registers one flag per setting, plus --config, on fs. Defaults shown
// in the help are those of cfg.
func Bind(fs *flag.FlagSet, cfg *Config) *Loader {
	l := &Loader{cfg: cfg, settings: Settings(cfg), flags: map[string]string{}}
	fs.StringVar(&l.file, "config", "", "optional YAML config file (flags, then WINBACK_* env, then this file, then defaults)")
	for _, s := range l.settings {
		if s.Type == "map" {
			continue
		}
		help := s.Help
		if help == "" {
			help = s.Key
		}
		fs.Var(stagedFlag{l: l, s: s}, s.Flag, fmt.Sprintf("%s (env %s)", help, s.Env))
	}
	return l
}

type stagedFlag struct {
	l *Loader
	s *Setting
}

func (f stagedFlag) String() string {
	if f.s == nil {
		return ""
	}
	return f.s.Value()
}
func (f stagedFlag) IsBoolFlag() bool { return f.s != nil && f.s.Type == "bool" }
func (f stagedFlag) Set(text string) error {
	// Check now, so that a bad flag fails at parse time with its name.
	probe := reflect.New(f.s.v.Type()).Elem()
	if err := (&Setting{Type: f.s.Type, v: probe}).Set(text); err != nil {
		return err
	}
	f.l.flags[f.s.Flag] = text
	return nil
}

// Load applies the YAML file, the environment (lookup, usually os.LookupEnv)
// and the parsed flags over the defaults, then validates. A problem with a
// setting the file set names the file and line.
func (l *Loader) Load(lookup func(string) (string, bool)) error {
	file := l.file
	if file == "" {
		file, _ = lookup("WINBACK_CONFIG")
	}
	var lines map[string]int // setting key -> line in file, for settings the file decided
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if lines, err = loadYAML(bytes.NewReader(data), file, l.cfg); err != nil {
			return err // each message names the file and line
		}
	}
	for _, s := range l.settings {
		if text, ok := lookup(s.Env); ok && s.Type != "map" {
			if err := s.Set(text); err != nil {
				return fmt.Errorf("env %s: %w", s.Env, err)
			}
			delete(lines, s.Key)
		}
	}
	for _, s := range l.settings {
		if text, ok := l.flags[s.Flag]; ok {
			if err := s.Set(text); err != nil {
				return fmt.Errorf("--%s: %w", s.Flag, err)
			}
			delete(lines, s.Key)
		}
	}
	if err := l.cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", l.withLines(err, file, lines))
	}
	return nil
}

// withLines adds "(FILE:LINE key)" to each validation error about a
// setting whose value came from the file.
func (l *Loader) withLines(err error, file string, lines map[string]int) error {
	if len(lines) == 0 {
		return err
	}
	byFlag := map[string]string{}
	for _, s := range l.settings {
		byFlag["--"+s.Flag] = s.Key
	}
	var out []error
	for _, e := range unwrapAll(err) {
		flag, _, _ := strings.Cut(e.Error(), ":")
		if key, ok := byFlag[flag]; ok {
			if line, ok := lines[key]; ok {
				e = fmt.Errorf("%w (%s:%d %s)", e, file, line, key)
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// LoadYAML decodes YAML over cfg. Unknown keys are errors, so that a typo
// does not silently leave a default in place. Errors name the line, the
// key and, for a near miss, the key meant ("did you mean").
func LoadYAML(r io.Reader, cfg *Config) error {
	_, err := loadYAML(r, "", cfg)
	return err
}

// maxFileErrors bounds the problems reported for one file.
const maxFileErrors = 10

// loadYAML applies the YAML document in r over cfg, setting by setting,
// and returns the line of each key it set. name prefixes the messages.
func loadYAML(r io.Reader, name string, cfg *Config) (map[string]int, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		msg := syntaxError(name, err)
		if bytes.Contains(data, []byte("\n\t")) || bytes.HasPrefix(data, []byte("\t")) {
			msg += " (YAML indents with spaces, not tabs)"
		}
		return nil, &FileError{Msgs: []string{msg}}
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) && (err != nil || !emptyDocument(&more)) {
		// A second document (after ---) would be ignored: say so. (A
		// trailing --- with nothing after it is none.)
		if err == nil {
			line := more.Line
			if len(more.Content) > 0 {
				line = more.Content[0].Line
			}
			err = fmt.Errorf("line %d: a second YAML document (after ---); winback reads one: merge them into one", line)
		}
		msg := syntaxError(name, err)
		return nil, &FileError{Msgs: []string{msg}}
	}
	settings := Settings(cfg)
	y := &yamlLoader{name: name, byKey: map[string]*Setting{}, sections: map[string][]string{}, lines: map[string]int{}}
	for _, s := range settings {
		y.byKey[s.Key] = s
		y.all = append(y.all, s.Key)
		parts := strings.Split(s.Key, ".")
		for i := range parts {
			parent := strings.Join(parts[:i], ".")
			child := parts[i]
			if !slices.Contains(y.sections[parent], child) {
				y.sections[parent] = append(y.sections[parent], child)
			}
		}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	y.section("", root)
	if len(y.errs) > 0 {
		return y.lines, &FileError{Msgs: y.errs}
	}
	return y.lines, nil
}

// syntaxError renders a yaml.v3 parse error as NAME:LINE: problem.
// yaml.v3 reports a scanner error's line (1-based) but, for a parser
// error ("did not find expected ..."), the 0-based line where the
// unclosed list or mapping starts.
func syntaxError(name string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return fmt.Sprintf("%s: %s", name, msg)
	}
	num, problem, _ := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(num)
	if err != nil {
		return fmt.Sprintf("%s: %s", name, msg)
	}
	if strings.HasPrefix(problem, "did not find expected") {
		line++
		problem += " (in the list or mapping that starts on this line)"
	}
	if name == "" {
		return fmt.Sprintf("line %d: %s", line, problem)
	}
	return fmt.Sprintf("%s:%d: %s", name, line, problem)
}

// FileError lists the problems of a config file, each with its line.
type FileError struct{ Msgs []string }

func (e *FileError) Error() string { return strings.Join(e.Msgs, "\n") }

type yamlLoader struct {
	name     string
	byKey    map[string]*Setting
	all      []string
	sections map[string][]string // "" (top), "kafka", "kafka.sasl" -> child names
	lines    map[string]int
	errs     []string
}

func (y *yamlLoader) fail(n *yaml.Node, format string, args ...any) {
	if len(y.errs) == maxFileErrors {
		y.errs = append(y.errs, "(more problems not shown)")
	}
	if len(y.errs) > maxFileErrors {
		return
	}
	where := fmt.Sprintf("line %d", n.Line)
	if y.name != "" {
		where = fmt.Sprintf("%s:%d", y.name, n.Line)
	}
	y.errs = append(y.errs, where+": "+fmt.Sprintf(format, args...))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (y *yamlLoader) section(path string, n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty section keeps the defaults
	}
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if path != "" {
			what = path
		}
		y.fail(n, "%s must be a mapping of settings (key: value), not %s", what, kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := kn.Value
		full := join(path, key)
		if kn.Tag == "!!merge" {
			y.fail(kn, "merge keys (<<) are not supported; repeat the settings")
			continue
		}
		if line, ok := seen[key]; ok {
			y.fail(kn, "%s is set twice (also on line %d)", full, line)
			continue
		}
		seen[key] = kn.Line
		if s, ok := y.byKey[full]; ok {
			y.lines[full] = kn.Line
			y.leaf(s, kn, vn)
			continue
		}
		if _, ok := y.sections[full]; ok {
			y.section(full, vn)
			continue
		}
		y.fail(kn, "%s", y.unknown(path, key))
	}
}

// unknown explains a key that is no setting, with the nearest one.
func (y *yamlLoader) unknown(path, key string) string {
	full := join(path, key)
	msg := fmt.Sprintf("unknown setting %s", full)
	if s := Suggest(key, y.sections[path]); s != "" {
		return msg + "; did you mean " + join(path, s) + "?"
	}
	// In the wrong section: the same name (or a near one) elsewhere.
	var same, near []string
	for _, k := range y.all {
		last := k[strings.LastIndex(k, ".")+1:]
		switch {
		case last == key:
			same = append(same, k)
		case len(key) > 3 && Suggest(key, []string{last}) != "":
			near = append(near, k)
		}
	}
	if len(same) > 0 {
		near = same
	}
	if len(near) > 0 && len(near) <= 3 {
		return msg + "; did you mean " + strings.Join(near, " or ") + "?"
	}
	if s := Suggest(full, y.all); s != "" {
		return msg + "; did you mean " + s + "?"
	}
	if path == "" {
		return msg + " (winback config lists every setting)"
	}
	return msg + fmt.Sprintf(" (%s has %s)", path, strings.Join(y.sections[path], ", "))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

func (y *yamlLoader) leaf(s *Setting, kn, vn *yaml.Node) {
	if vn.Kind == yaml.AliasNode {
		vn = vn.Alias
	}
	switch {
	case s.Type == "map":
		if err := vn.Decode(s.v.Addr().Interface()); err != nil {
			y.fail(vn, "%s: %s", s.Key, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	case s.Type == "list" && vn.Kind == yaml.SequenceNode:
		items := reflect.MakeSlice(s.v.Type(), 0, len(vn.Content))
		for _, it := range vn.Content {
			if it.Kind != yaml.ScalarNode {
				y.fail(it, "%s: each item must be a plain value, not %s", s.Key, kindName(it))
				return
			}
			items = reflect.Append(items, reflect.ValueOf(it.Value).Convert(s.v.Type().Elem()))
		}
		s.v.Set(items)
	case vn.Kind != yaml.ScalarNode:
		y.fail(vn, "%s takes a single value, not %s", s.Key, kindName(vn))
	case vn.Tag == "!!null" && s.Type == "string":
		s.v.SetString("")
	case vn.Tag == "!!null":
		// An empty value (brokers:, a template's missing value) would
		// leave the default in place unnoticed.
		y.fail(vn, "%s has no value; give one, or remove the key to keep the default (%s)", s.Key, s.Value())
	default:
		if err := s.Set(vn.Value); err != nil {
			y.fail(vn, "%s: %v", s.Key, err)
		}
	}
}

// Reference renders the config reference as a Markdown table.
func Reference() string {
	cfg := Default()
	var b strings.Builder
	b.WriteString("| YAML key | flag | env | default | meaning |\n|---|---|---|---|---|\n")
	for _, s := range Settings(&cfg) {
		def := s.Value()
		if def == "" {
			def = " "
		}
		flag, env := "`--"+s.Flag+"`", "`"+s.Env+"`"
		if s.Type == "map" {
			flag, env = "YAML only", "YAML only"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", s.Key, flag, env, def, s.Help)
	}
	return b.String()
}

// ParseDuration parses a Go duration (500ms, 60s, 5m, 1h30m). A bare
// number is refused with the unit spelled out, since 60 could mean
// seconds or nanoseconds.
func ParseDuration(text string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err == nil {
		return d, nil
	}
	if _, nerr := strconv.ParseFloat(strings.TrimSpace(text), 64); nerr == nil {
		return 0, fmt.Errorf("%q has no unit; durations take one: write %ss (or %sms, %sm)", text, text, text, text)
	}
	return 0, fmt.Errorf("%q is not a duration; write one with a unit, such as 500ms, 60s, 5m or 1h", text)
}

// ParseLevel maps a log level name to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%s", oneOf(s, "debug", "info", "warn", "error"))
	}
	return l, nil
}

// emptyDocument reports whether doc holds nothing (a trailing ---).
func emptyDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || len(doc.Content) == 1 && doc.Content[0].Tag == "!!null" && doc.Content[0].Value == ""
}
