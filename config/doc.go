// Package config holds winback's settings and loads them.
//
// Every setting is a field of Config. Its struct tags give its YAML key
// (`yaml`), its help text (`help`) and, through the field path, its flag
// (--kafka-brokers) and environment variable (WINBACK_KAFKA_BROKERS). The
// flags, the env names and the README's config reference are all generated
// from the struct, so they cannot drift apart.
//
// Load starts from Default(), then applies the YAML file (--config), then
// WINBACK_* variables, then the flags given on the command line, and finally
// runs Validate, whose errors name the setting and say how to fix it.
package config
