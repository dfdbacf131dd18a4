package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// promExpr is what the checks need from a PromQL expression: the metric
// selectors and the label names it groups by. promParse is a tokenizer, not
// a parser: it knows strings, label matchers, ranges, Grafana variables,
// numbers, the aggregation and grouping keywords and the functions, and
// takes every other identifier for a metric name.
type promExpr struct {
	selectors  []selector
	grouping   []string // label names in by/without/on/ignoring/group_left/group_right
	aggregated bool     // an aggregation operator (sum, max, ...) appears
	without    bool     // a without(...) clause appears: output labels unknown
}

type selector struct {
	name   string
	labels []string // label names of the matchers
}

// names returns the metric names, sorted and unique.
func (e promExpr) names() []string {
	var out []string
	for _, s := range e.selectors {
		out = append(out, s.name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var promAggregations = set(
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio",
)

var promGrouping = set("by", "without", "on", "ignoring", "group_left", "group_right")

var promKeywords = set("and", "or", "unless", "bool", "offset", "atan2", "inf", "nan")

var promFunctions = set(
	"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
	"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
	"delta", "deriv", "double_exponential_smoothing", "end", "exp", "floor", "histogram_avg",
	"histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
	"histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info",
	"irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
	"mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
	"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
	"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
	"sort_desc", "sqrt", "start", "stddev_over_time", "stdvar_over_time", "sum_over_time",
	"tan", "tanh", "time", "timestamp", "vector", "year",
)

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// promParse tokenizes expr. Errors: unbalanced brackets, unterminated
// strings, malformed matchers, and an unknown function.
func promParse(expr string) (promExpr, error) {
	var out promExpr
	depth := 0
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case isSpace(c):
			i++
		case c == '#': // comment to end of line
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return out, err
			}
			i = end
		case c == '{': // a selector without a metric name: {__name__="x"}
			end, labels, name, err := parseMatchers(expr, i)
			if err != nil {
				return out, err
			}
			if name == "" {
				return out, fmt.Errorf("selector at %d has no metric name", i)
			}
			out.selectors = append(out.selectors, selector{name: name, labels: labels})
			i = end
		case c == '}':
			return out, fmt.Errorf("unbalanced } at %d", i)
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return out, fmt.Errorf("unterminated [ at %d", i)
			}
			i += end + 1
		case c == ']':
			return out, fmt.Errorf("unbalanced ] at %d", i)
		case c == '$': // Grafana variable: $name, ${name}, ${name:fmt}
			i++
			if i < len(expr) && expr[i] == '{' {
				end := strings.IndexByte(expr[i:], '}')
				if end < 0 {
					return out, fmt.Errorf("unterminated ${ at %d", i)
				}
				i += end + 1
			} else {
				for i < len(expr) && isIdentChar(expr[i]) {
					i++
				}
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9':
			// number or duration: 0.99, 1e3, 0x1f, 5m, 1h30m
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			word := expr[start:i]
			lower := strings.ToLower(word)
			j := i
			for j < len(expr) && isSpace(expr[j]) {
				j++
			}
			next := byte(0)
			if j < len(expr) {
				next = expr[j]
			}
			switch {
			case promGrouping[lower]:
				if lower == "without" {
					out.without = true
				}
				if next != '(' {
					if lower == "group_left" || lower == "group_right" {
						continue // group_left without a label list
					}
					return out, fmt.Errorf("%s at %d without a label list", word, start)
				}
				end := strings.IndexByte(expr[j:], ')')
				if end < 0 {
					return out, fmt.Errorf("unterminated %s( at %d", word, start)
				}
				for _, l := range strings.Split(expr[j+1:j+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						out.grouping = append(out.grouping, l)
					}
				}
				i = j + end + 1
			case promAggregations[lower]:
				out.aggregated = true
			case promKeywords[lower]:
			case next == '(':
				if !promFunctions[word] {
					return out, fmt.Errorf("unknown function %s at %d", word, start)
				}
			default:
				sel := selector{name: word}
				if next == '{' {
					end, labels, name, err := parseMatchers(expr, j)
					if err != nil {
						return out, err
					}
					if name != "" {
						return out, fmt.Errorf("metric %s also has __name__ at %d", word, start)
					}
					sel.labels = labels
					i = end
				}
				out.selectors = append(out.selectors, sel)
			}
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return out, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		default: // operators, commas, @
			i++
		}
	}
	if depth != 0 {
		return out, fmt.Errorf("%d unclosed (", depth)
	}
	return out, nil
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// parseMatchers parses {l="v", l2=~"re"} at s[i] == '{' and returns the
// index after '}', the label names, and the value of __name__ if given.
func parseMatchers(s string, i int) (end int, labels []string, name string, err error) {
	j := i + 1
	skip := func() {
		for j < len(s) && isSpace(s[j]) {
			j++
		}
	}
	for {
		skip()
		if j >= len(s) {
			return 0, nil, "", fmt.Errorf("unterminated { at %d", i)
		}
		if s[j] == '}' {
			return j + 1, labels, name, nil
		}
		start := j
		for j < len(s) && isIdentChar(s[j]) {
			j++
		}
		label := s[start:j]
		if label == "" {
			return 0, nil, "", fmt.Errorf("matcher at %d: want a label name, got %q", start, s[start:min(start+10, len(s))])
		}
		skip()
		switch {
		case strings.HasPrefix(s[j:], "=~"), strings.HasPrefix(s[j:], "!~"), strings.HasPrefix(s[j:], "!="):
			j += 2
		case strings.HasPrefix(s[j:], "="):
			j++
		default:
			return 0, nil, "", fmt.Errorf("matcher %s at %d: want =, !=, =~ or !~", label, start)
		}
		skip()
		if j >= len(s) || (s[j] != '"' && s[j] != '\'' && s[j] != '`') {
			return 0, nil, "", fmt.Errorf("matcher %s at %d: want a quoted value", label, start)
		}
		vend, err := skipString(s, j)
		if err != nil {
			return 0, nil, "", err
		}
		if label == "__name__" {
			name = s[j+1 : vend-1]
		} else {
			labels = append(labels, label)
		}
		j = vend
		skip()
		if j < len(s) && s[j] == ',' {
			j++
		}
	}
}

func TestPromParse(t *testing.T) {
	f := func(expr string, wantNames, wantGrouping []string) {
		t.Helper()
		got, err := promParse(expr)
		if err != nil {
			t.Fatalf("promParse(%q): %v", expr, err)
		}
		if names := got.names(); !slices.Equal(names, wantNames) {
			t.Errorf("promParse(%q) names = %q, want %q", expr, names, wantNames)
		}
		if !slices.Equal(got.grouping, wantGrouping) {
			t.Errorf("promParse(%q) grouping = %q, want %q", expr, got.grouping, wantGrouping)
		}
	}
	f(`winback_events_total`, []string{"winback_events_total"}, nil)
	f(`rate(winback_events_total{job=~"$job", topic!="x{y}"}[$__rate_interval])`, []string{"winback_events_total"}, nil)
	f(`sum by (topic, outcome) (rate(winback_events_total[5m]))`, []string{"winback_events_total"}, []string{"topic", "outcome"})
	f(`SUM BY (le) (rate(a_bucket[5m])) / ON (job) GROUP_LEFT b`, []string{"a_bucket", "b"}, []string{"le", "job"})
	f(`histogram_quantile(0.99, sum by (job, le) (rate(x_seconds_bucket[10m]))) > 2`, []string{"x_seconds_bucket"}, []string{"job", "le"})
	f(`deriv((sum by (job) (lag))[15m:1m]) > 0 and lag > 1e5`, []string{"lag"}, []string{"job"})
	f(`(sum(increase(t{kind="WINBACK"}[24h])) or sum(rate(e[24h])) * 0) == 0 unless e offset 1h`, []string{"e", "t"}, nil)
	f(`label_replace(up, "dst", "$1", "instance", "(.*):.*")`, []string{"up"}, nil)
	f(`{__name__="winback_events_total", topic="orders"}`, []string{"winback_events_total"}, nil)
	f(`-sum(rate(a[1m])) # comment with not_a_metric`, []string{"a"}, nil)
	f(`count_values("v", a) + topk(3, b) + .5 + 0x1f + inf`, []string{"a", "b"}, nil)
	f(`a * on (x) group_left c`, []string{"a", "c"}, []string{"x"})

	got, err := promParse(`sum by (reason) (rate(winback_triggers_total{kind="RECOVERED", tier=~"HIGH|MEDIUM"}[5m]))`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.selectors) != 1 || !slices.Equal(got.selectors[0].labels, []string{"kind", "tier"}) || !got.aggregated {
		t.Errorf("selectors = %+v, aggregated = %v; want one selector with labels kind, tier, aggregated", got.selectors, got.aggregated)
	}
}

func TestPromParseErrors(t *testing.T) {
	f := func(expr, wantErr string) {
		t.Helper()
		_, err := promParse(expr)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("promParse(%q) error = %v, want it to contain %q", expr, err, wantErr)
		}
	}
	f(`sum(rate(a[5m])`, "unclosed (")
	f(`rate(a[5m]))`, "unbalanced )")
	f(`rate(a[5m)`, "unterminated [")
	f(`a{job="x"`, "unterminated {")
	f(`a{job="x}`, "unterminated string")
	f(`a{job}`, "want =")
	f(`a{job=x}`, "quoted value")
	f(`rates(a[5m])`, "unknown function rates")
	f(`sum by topic (a)`, "without a label list")
	f(`{job="x"}`, "no metric name")
}
