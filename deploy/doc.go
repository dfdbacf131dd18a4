// Package deploy holds winback's deployment files and the tests that keep
// them true to the code. It has no Go API.
//
//	../Dockerfile              multi-stage build, distroless static, uid 65532
//	compose.yaml               Redpanda, topic init, ClickHouse, winback, gen (profile demo), Prometheus, Grafana
//	k8s/                       StatefulSet, headless Service, ConfigMap, Service, PodDisruptionBudget, Secret example, kustomization
//	grafana/winback.json       the Grafana dashboard; grafana/provisioning/ wires it into compose's Grafana
//	prometheus/alerts.yaml     alerting rules; prometheus/prometheus.yml scrapes compose's services
//
// The tests parse every file (no Docker needed) and check them against the
// code: every WINBACK_* variable, flag and YAML key exists in config.Config
// and the resulting configuration validates; every metric in a PromQL
// expression of the dashboard or the alerts is declared in the Go sources
// (winback_*), by kprom (winback_kafka_*) or by the Go and process
// collectors; probes, ports, users and grace periods agree across the
// Dockerfile, compose, the manifests and config.Default(); the settings,
// metrics and links named in docs/production.md and k8s/README.md exist.
package deploy
