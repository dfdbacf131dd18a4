// Package admin serves winback's HTTP endpoints:
//
//	GET /metrics               Prometheus metrics (winback's and franz-go's via kprom)
//	GET /healthz               200 while the process is alive
//	GET /readyz                200 when state is restored, Kafka is reachable, ClickHouse accepts writes and the schema registry answered the last lookup; 503 with the failing check otherwise
//	GET /v1/customers/{id}     the live state of a customer as JSON, from the instance that owns it;
//	                           404 if unknown, 421 with the owning partition and member if another instance owns it
//	GET /debug/pprof/...       Go's profiler (net/http/pprof), only WithPprof (--http-pprof); cmdline
//	                           shows the command line the caller passes, secrets masked
//
// WithToken (--http-token-file) makes /v1/customers/{id} and /debug/pprof/
// require "Authorization: Bearer <token>" (401 otherwise). /metrics, /healthz
// and /readyz stay open for probes and Prometheus; keep --http-addr off the
// public network all the same (deploy/k8s ships a NetworkPolicy).
package admin
