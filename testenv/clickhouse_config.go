package testenv

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// chLayout is where a ClickHouse server keeps its files under its dir.
type chLayout struct {
	Dir         string
	Config      string // config.xml
	Users       string // users.xml
	Data        string // path
	Tmp         string // tmp_path
	UserFiles   string // user_files_path
	FormatSchem string // format_schema_path
	LogDir      string
	Log         string // server log (warnings and up)
	ErrLog      string // server error log
	Stdio       string // the process's stdout and stderr
	TCPPort     int
	HTTPPort    int
	// Cluster mode (StartClickHouseCluster): the cluster's name in
	// remote_servers, its shards' replicas' native ports, this server's
	// {shard} and {replica} macros, and, with replicated tables, the
	// interserver port and ZooKeeper's client port.
	Cluster         string
	ShardPorts      [][]int
	Shard, Replica  string
	Replicated      bool
	InterserverPort int
	ZooKeeperPort   int
}

func newLayout(dir string, tcpPort, httpPort int) chLayout {
	logDir := filepath.Join(dir, "log")
	return chLayout{
		Dir:         dir,
		Config:      filepath.Join(dir, "config.xml"),
		Users:       filepath.Join(dir, "users.xml"),
		Data:        filepath.Join(dir, "data") + "/",
		Tmp:         filepath.Join(dir, "tmp") + "/",
		UserFiles:   filepath.Join(dir, "user_files") + "/",
		FormatSchem: filepath.Join(dir, "format_schemas") + "/",
		LogDir:      logDir,
		Log:         filepath.Join(logDir, "clickhouse-server.log"),
		ErrLog:      filepath.Join(logDir, "clickhouse-server.err.log"),
		Stdio:       filepath.Join(logDir, "stdout.log"),
		TCPPort:     tcpPort,
		HTTPPort:    httpPort,
	}
}

// The config is what ClickHouse 18.16 needs to run unprivileged out of one
// directory, and also works on newer servers. Notes:
//   - 18.16 has no max_server_memory_usage (20.x+); the per-query
//     max_memory_usage in the default profile bounds memory instead.
//   - timezone is UTC so DateTime values do not depend on the machine.
//   - interserver_http_port is omitted but for replicated clusters
//     (StartClickHouseCluster): no replication, and no third port.
//   - poll_interval is 1 s, not 10 (users.xml, default profile): an idle
//     client connection notices a shutdown only between polls, so with 10
//     a graceful Stop waited 10 s whenever a client pool held a
//     connection. Stop now takes about 1 s.
var configTmpl = template.Must(template.New("config.xml").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0"?>
<!-- Written by winback testenv; rewritten at every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{{x .Log}}</log>
        <errorlog>{{x .ErrLog}}</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <path>{{x .Data}}</path>
    <tmp_path>{{x .Tmp}}</tmp_path>
    <user_files_path>{{x .UserFiles}}</user_files_path>
    <format_schema_path>{{x .FormatSchem}}</format_schema_path>
    <users_config>{{x .Users}}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
{{- if .Cluster}}
    <remote_servers>
        <{{.Cluster}}>
{{- range .ShardPorts}}
            <shard>
                <internal_replication>{{$.Replicated}}</internal_replication>
{{- range .}}
                <replica><host>127.0.0.1</host><port>{{.}}</port></replica>
{{- end}}
            </shard>
{{- end}}
        </{{.Cluster}}>
    </remote_servers>
    <macros>
        <shard>{{x .Shard}}</shard>
        <replica>{{x .Replica}}</replica>
    </macros>
{{- end}}
{{- if .InterserverPort}}
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
{{- end}}
{{- if .ZooKeeperPort}}
    <zookeeper>
        <node><host>127.0.0.1</host><port>{{.ZooKeeperPort}}</port></node>
    </zookeeper>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
{{- end}}
</yandex>
`))

var usersXML = `<?xml version="1.0"?>
<!-- Written by winback testenv. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default/>
    </quotas>
</yandex>
`

func xmlText(s string) (string, error) {
	var b bytes.Buffer
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// write creates the directories and writes config.xml and users.xml.
func (l chLayout) write() error {
	for _, d := range []string{l.Dir, l.Data, l.Tmp, l.UserFiles, l.FormatSchem, l.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("testenv: clickhouse dir: %w", err)
		}
	}
	var b bytes.Buffer
	if err := configTmpl.Execute(&b, l); err != nil {
		return fmt.Errorf("testenv: clickhouse config: %w", err)
	}
	if err := os.WriteFile(l.Config, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("testenv: clickhouse config: %w", err)
	}
	if err := os.WriteFile(l.Users, []byte(usersXML), 0o644); err != nil {
		return fmt.Errorf("testenv: clickhouse users: %w", err)
	}
	return nil
}
