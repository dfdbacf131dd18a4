package config

import (
	"fmt"
	"strings"
)

// Suggest returns the option closest to got, for a "did you mean", or ""
// when none is close: equal but for case, a prefix of the other (at least
// three characters), or within an edit distance of about a third of the
// length.
func Suggest(got string, options []string) string {
	g := strings.ToLower(got)
	best, bestD := "", 1<<30
	for _, o := range options {
		ol := strings.ToLower(o)
		d := editDistance(g, ol)
		switch {
		case g == ol:
			d = 0
		case len(g) >= 3 && (strings.HasPrefix(ol, g) || strings.HasPrefix(g, ol)):
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" || bestD > max(1, (len(g)+2)/3) {
		return ""
	}
	return best
}

// DidYouMean is "; did you mean X?" for Suggest's answer, or "".
func DidYouMean(got string, options []string, render func(string) string) string {
	s := Suggest(got, options)
	if s == "" {
		return ""
	}
	if render != nil {
		s = render(s)
	}
	return fmt.Sprintf("; did you mean %s?", s)
}

// oneOf is the message for a value that is not one of options.
func oneOf(got string, options ...string) string {
	msg := fmt.Sprintf("%q; use %s", got, orList(options))
	if s := Suggest(got, options); s != "" {
		msg = fmt.Sprintf("%q is not one of %s; did you mean %s?", got, orList(options), s)
	}
	return msg
}

func orList(options []string) string {
	switch len(options) {
	case 0:
		return ""
	case 1:
		return options[0]
	}
	return strings.Join(options[:len(options)-1], ", ") + " or " + options[len(options)-1]
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnknownEnv returns a message for each WINBACK_* variable of environ
// (as os.Environ gives it) that is no setting, with the variable meant
// for a near miss. WINBACK_CONFIG and WINBACK_TESTENV_* (test helpers)
// are known.
func UnknownEnv(environ []string) []string {
	cfg := Default()
	known := map[string]bool{"WINBACK_CONFIG": true}
	var names []string
	for _, s := range Settings(&cfg) {
		if s.Type != "map" {
			known[s.Env] = true
			names = append(names, s.Env)
		}
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "WINBACK_") || known[name] || strings.HasPrefix(name, "WINBACK_TESTENV_") {
			continue
		}
		out = append(out, fmt.Sprintf("%s is not a setting and is ignored%s", name, DidYouMean(name, names, nil)))
	}
	return out
}
