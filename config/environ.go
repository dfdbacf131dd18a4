package config

import "slices"

// Environ renders c as WINBACK_* variables, NAME=value, one for each
// setting whose value differs from Default(), sorted by name. A process
// that loads them (Loader.Load with os.LookupEnv) gets c back, which is how
// a parent process hands its settings to a `winback run` child without
// spelling out variable names. Maps (clickhouse.settings) are left out:
// they have no environment form.
func Environ(c *Config) []string {
	def := Default()
	base := map[string]string{}
	for _, s := range Settings(&def) {
		base[s.Env] = s.Value()
	}
	var env []string
	for _, s := range Settings(c) {
		if v := s.Value(); s.Type != "map" && v != base[s.Env] {
			env = append(env, s.Env+"="+v)
		}
	}
	slices.Sort(env)
	return env
}
