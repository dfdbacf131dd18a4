package config

import (
	"net/url"
	"strings"
)

// Redacted replaces a secret wherever winback shows a setting.
const Redacted = "***"

// urlPassword is the password in the userinfo of URL s, if any.
func urlPassword(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// Redact masks the secrets in a URL or DSN so that it can be logged, shown
// in an error or printed: the password of its userinfo
// (clickhouse://user:pass@host becomes clickhouse://user:***@host) and the
// values of query parameters that carry credentials (password, passwd, pwd,
// secret, token, access_token, sasl_password, http_proxy). It works on the
// raw text, so it also masks a string that does not parse as a URL; when
// unsure it masks too much rather than too little. A string with neither is
// returned as it is.
func Redact(s string) string {
	// The query first: a value may hold an unescaped "@", which the
	// userinfo step would take for its delimiter.
	if q := strings.IndexByte(s, '?'); q >= 0 {
		s = s[:q+1] + redactQuery(s[q+1:])
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	// The authority ends at the first "/" after the last "@" (a password
	// may hold an unescaped "@" or "/"), or at the query.
	rest := s[start:]
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
			s = s[:start+colon+1] + Redacted + s[start+at:]
		}
	}
	return s
}

// secretParams are query parameters whose values are credentials.
var secretParams = map[string]bool{
	"password": true, "passwd": true, "pwd": true, "secret": true, "token": true,
	"access_token": true, "sasl_password": true, "http_proxy": true,
}

func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if secretParams[strings.ToLower(k)] {
			parts[i] = p[:strings.IndexByte(p, '=')+1] + Redacted
		}
	}
	return strings.Join(parts, "&")
}

// secretFlag reports whether a flag's value is a secret as a whole.
func secretFlag(name string) bool {
	name = strings.ToLower(name)
	return strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.HasSuffix(name, "-token")
}

// RedactArgs returns a copy of a command line (os.Args) with the secrets
// masked: the values of password, secret and token flags (--x-password=v
// or --x-password v) and the userinfo passwords and credential parameters
// of every URL (see Redact). It is what /debug/pprof/cmdline shows.
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	maskNext := false
	for i, a := range args {
		switch {
		case maskNext:
			out[i], maskNext = Redacted, false
			continue
		case strings.HasPrefix(a, "-") && a != "-" && a != "--":
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if secretFlag(name) {
				if hasValue {
					out[i] = a[:strings.IndexByte(a, '=')+1] + Redacted
				} else {
					out[i], maskNext = a, true
				}
				continue
			}
		}
		out[i] = Redact(a)
	}
	return out
}

// Secrets returns the secret values set in c (passwords, and the
// credentials in its DSN and registry URL), for tests and log scrubbers
// that check no output shows them. Empty values are left out.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	add(c.Kafka.SASL.Password)
	add(c.Registry.Password)
	for _, raw := range []string{c.ClickHouse.DSN, c.Registry.URL} {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		for k, vs := range u.Query() {
			if secretParams[strings.ToLower(k)] {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	return out
}
