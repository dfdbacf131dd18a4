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
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", text)
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
// and the parsed flags over the defaults, then validates.
func (l *Loader) Load(lookup func(string) (string, bool)) error {
	file := l.file
	if file == "" {
		file, _ = lookup("WINBACK_CONFIG")
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := LoadYAML(bytes.NewReader(data), l.cfg); err != nil {
			return fmt.Errorf("config file %s: %w", file, err)
		}
	}
	for _, s := range l.settings {
		if text, ok := lookup(s.Env); ok && s.Type != "map" {
			if err := s.Set(text); err != nil {
				return fmt.Errorf("env %s: %w", s.Env, err)
			}
		}
	}
	for _, s := range l.settings {
		if text, ok := l.flags[s.Flag]; ok {
			if err := s.Set(text); err != nil {
				return fmt.Errorf("--%s: %w", s.Flag, err)
			}
		}
	}
	if err := l.cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

// LoadYAML decodes YAML over cfg. Unknown keys are errors, so that a typo
// does not silently leave a default in place.
func LoadYAML(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
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

// ParseLevel maps a log level name to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}
