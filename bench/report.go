package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the -out JSON file.
type report struct {
	Date    time.Time     `json:"date"`
	Commit  string        `json:"commit,omitempty"` // of the winback repository measured; "-dirty" if it had uncommitted changes
	Machine machine       `json:"machine"`
	Args    []string      `json:"args"`
	Stream  streamInfo    `json:"stream"`
	Lines   []line        `json:"contenders"`
	Queries []queryResult `json:"clickhouse_queries,omitempty"`
	// Scheduled are the ClickHouse-only peer's lapse queries during its
	// ingest (charged to its line).
	Scheduled []scheduledQuery `json:"clickhouse_scheduled,omitempty"`
	ScheduleS float64          `json:"clickhouse_schedule_s,omitempty"` // how often they run
	Restores  []restoreResult  `json:"restore,omitempty"`
	Latency   *latencyResult   `json:"latency,omitempty"`
	Work      []winbackWork    `json:"winback_work,omitempty"`
	Budgets   []wallBudget     `json:"wall_budget,omitempty"`
	Engine    []engineHeap     `json:"engine_heap,omitempty"`
	Notes     []string         `json:"notes,omitempty"`
	Failures  []string         `json:"failures,omitempty"`
}

type machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	MemTotal  string `json:"mem_total"`
}

// line is one contender's row of the table.
type line struct {
	Name       string  `json:"name"`
	What       string  `json:"what"`
	Events     int64   `json:"events"`
	Wall       float64 `json:"wall_s"`
	CPU        float64 `json:"cpu_s"`                // the contender's own process
	PerSecond  float64 `json:"events_per_s"`         // events / wall
	PerCore    float64 `json:"events_per_cpu_s"`     // events / CPU seconds
	VsCeiling  float64 `json:"vs_ceiling"`           // PerCore / the ceiling's PerCore
	VsGoka     float64 `json:"vs_goka"`              // PerCore / goka-leveldb's (goka's default storage)
	PeakRSS    int64   `json:"peak_rss_bytes"`       //
	BrokerCPU  float64 `json:"broker_cpu_s"`         // the kfake child while this contender ran
	ServerCPU  float64 `json:"clickhouse_cpu_s"`     // clickhouse-server while this contender ran
	PerCoreAll float64 `json:"events_per_cpu_s_all"` // events / (CPU + broker CPU + ClickHouse CPU)
	Error      string  `json:"error,omitempty"`
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				break
			}
		}
		f.Close()
	}
	return m
}

// gitCommit names the commit of the repository at repo, with "-dirty" if
// its work tree has changes other than the outputs of make bench (a run
// that follows another before its results are committed measures the
// same code); "" if git cannot tell.
func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	status := []string{"-C", repo, "status", "--porcelain", "--untracked-files=no", "--", ".",
		":!bench/results.*", ":!bench/micro.*", ":!bench/profiles"}
	if st, err := exec.Command("git", status...).Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

// rateOf is rate of the first of names, in that order, that ran and has
// it; 0 if none has.
func rateOf(ls []line, rate func(line) float64, names ...string) float64 {
	for _, n := range names {
		for _, l := range ls {
			if l.Name == n && l.Error == "" && rate(l) > 0 {
				return rate(l)
			}
		}
	}
	return 0
}

func perCore(l line) float64   { return l.PerCore }
func perSecond(l line) float64 { return l.PerSecond }

// ratios fills VsCeiling and VsGoka.
func ratios(ls []line) {
	ceil, goka := rateOf(ls, perCore, "ceiling"), rateOf(ls, perCore, "goka-leveldb", "goka-memory")
	for i := range ls {
		if ls[i].Error != "" {
			continue
		}
		if ceil > 0 {
			ls[i].VsCeiling = ls[i].PerCore / ceil
		}
		if goka > 0 {
			ls[i].VsGoka = ls[i].PerCore / goka
		}
	}
}

// ceilingShare is the end-to-end target: a share of the ceiling's events/s
// (wall).
const ceilingShare = 0.5

// wallBudget checks a winback line against the end-to-end target: how far
// its wall rate is from ceilingShare of the ceiling's, and what the target
// leaves for the CPU of every process in the run. The machine's cores are
// shared by the contender, the broker and ClickHouse, so the target can
// only be met if their CPU together fits in wall time × cores.
type wallBudget struct {
	Run         string  `json:"run"`
	Share       float64 `json:"share_of_ceiling"` // events/s over the ceiling's events/s
	TargetWall  float64 `json:"target_wall_s"`    // the stream's wall time at ceilingShare of the ceiling's rate
	CPUBudget   float64 `json:"cpu_budget_s"`     // TargetWall × cores
	CPUUsed     float64 `json:"cpu_used_s"`       // winback + broker + ClickHouse
	OwnCPU      float64 `json:"winback_cpu_s"`    // of which winback
	ServerCPU   float64 `json:"clickhouse_cpu_s"` // of which ClickHouse
	Cores       int     `json:"cores"`
	CeilingRate float64 `json:"ceiling_events_per_s"`
	Rate        float64 `json:"events_per_s"`
	Events      int64   `json:"events"`
}

// budgets returns a wallBudget for every winback line, if the ceiling ran.
func budgets(ls []line, cores int) []wallBudget {
	ceil := rateOf(ls, perSecond, "ceiling")
	if ceil <= 0 || cores <= 0 {
		return nil
	}
	var out []wallBudget
	for _, l := range ls {
		if !strings.HasPrefix(l.Name, "winback") || l.Error != "" || l.PerSecond <= 0 {
			continue
		}
		wall := float64(l.Events) / (ceilingShare * ceil)
		out = append(out, wallBudget{Run: l.Name, Share: l.PerSecond / ceil, TargetWall: wall, CPUBudget: wall * float64(cores),
			CPUUsed: l.CPU + l.BrokerCPU + l.ServerCPU, OwnCPU: l.CPU, ServerCPU: l.ServerCPU, Cores: cores, CeilingRate: ceil, Rate: l.PerSecond, Events: l.Events})
	}
	return out
}

func (w *wallBudget) summary() string {
	return fmt.Sprintf("%s: %s events/s is %.0f%% of the ceiling's %s. At %.0f%% of it, the %d events would take %.2f s, so %.2f CPU s on %d cores for every process; "+
		"the run used %.2f CPU s (%.1f× that): winback's own %.2f s (%.1f×) and ClickHouse's inserts %.2f s (%.1f×)",
		w.Run, human(w.Rate), 100*w.Share, human(w.CeilingRate), 100*ceilingShare, w.Events, w.TargetWall, w.CPUBudget, w.Cores,
		w.CPUUsed, w.CPUUsed/w.CPUBudget, w.OwnCPU, w.OwnCPU/w.CPUBudget, w.ServerCPU, w.ServerCPU/w.CPUBudget)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func ratio(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

// tableRows renders the contender table as rows of cells.
func tableRows(ls []line) [][]string {
	rows := [][]string{{"contender", "events", "wall s", "CPU s", "events/s", "events/s per core", "vs ceiling", "vs goka", "peak RSS", "broker CPU s", "ClickHouse CPU s", "events/s per core, all processes"}}
	for _, l := range ls {
		if l.Error != "" {
			rows = append(rows, []string{l.Name, "FAILED: " + l.Error, "", "", "", "", "", "", "", "", "", ""})
			continue
		}
		rows = append(rows, []string{l.Name, fmt.Sprint(l.Events), fmt.Sprintf("%.2f", l.Wall), fmt.Sprintf("%.2f", l.CPU),
			human(l.PerSecond), human(l.PerCore), ratio(l.VsCeiling), ratio(l.VsGoka), mib(l.PeakRSS),
			fmt.Sprintf("%.2f", l.BrokerCPU), fmt.Sprintf("%.2f", l.ServerCPU), human(l.PerCoreAll)})
	}
	return rows
}

// sweepRows renders the commit-interval table: every winback run, with
// its commit interval, beside the baselines (ceiling, goka, the
// ClickHouse-only peer), as rows of cells.
func (r *report) sweepRows() [][]string {
	rows := [][]string{{"contender", "commit interval", "events", "events/CPU-s (own process)", "vs ceiling", "vs goka", "ClickHouse server CPU per event",
		"events/CPU-s, all processes", "vs ClickHouse-only, all processes", "trigger latency p99", "triggers emitted", "transactions", "events per transaction", "batch bounded by", "heap per customer"}}
	byName := map[string]line{}
	for _, l := range r.Lines {
		byName[l.Name] = l
	}
	ch := byName["clickhouse"]
	vsCH := func(l line) string {
		if ch.Error != "" || ch.PerCoreAll <= 0 || l.PerCoreAll <= 0 {
			return "–"
		}
		return ratio(l.PerCoreAll / ch.PerCoreAll)
	}
	perEvent := func(l line) string {
		if l.Events <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f µs", l.ServerCPU/float64(l.Events)*1e6)
	}
	base := func(l line) []string {
		return []string{l.Name, "–", fmt.Sprint(l.Events), human(l.PerCore), ratio(l.VsCeiling), ratio(l.VsGoka), perEvent(l), human(l.PerCoreAll), vsCH(l)}
	}
	for _, name := range []string{"ceiling", "goka-leveldb", "goka-memory", "clickhouse"} {
		l, ok := byName[name]
		if !ok || l.Error != "" {
			continue
		}
		row := append(base(l), "–", "–", "–", "–", "–", "–")
		if name == "clickhouse" && len(r.Scheduled) > 0 {
			last := r.Scheduled[len(r.Scheduled)-1]
			var slowest float64
			for _, q := range r.Scheduled {
				slowest = max(slowest, q.Seconds)
			}
			row[1] = fmt.Sprintf("query every %.0f s", r.ScheduleS)
			row[9] = fmt.Sprintf("up to %.0f s + %.0f ms", r.ScheduleS, slowest*1000)
			row[10] = fmt.Sprintf("%d lapsed found (%d query runs)", last.Lapsed, len(r.Scheduled))
		}
		rows = append(rows, row)
	}
	for _, w := range r.Work {
		l, ok := byName[w.Run]
		if !ok || l.Error != "" {
			continue
		}
		row := base(l)
		row[1] = w.Interval
		lat := "–"
		if w.Latency != nil && w.Latency.Matched > 0 {
			lat = fmt.Sprintf("%.0f ms (metric %.0f ms; %d/%d)", w.Latency.P99*1000, w.Latency.MetricP99*1000, w.Latency.Matched, w.Latency.Probes)
		}
		heap := "–"
		if h := w.HeapPerCustomer(); h > 0 {
			heap = fmt.Sprintf("%.0f B", h)
		}
		rows = append(rows, append(row, lat, fmt.Sprintf("%.0f", w.TriggerCount()), fmt.Sprintf("%.0f", w.Transactions),
			human(w.EventsPerTransaction()), w.Bound(), heap))
	}
	return rows
}

// printText writes the human summary to w.
func (r *report) printText(w io.Writer) {
	fmt.Fprintf(w, "\nwinback bench, %s, %s (%d cores), %s\n", r.Date.Format(time.RFC3339), r.Machine.CPU, r.Machine.Cores, r.Machine.GoVersion)
	fmt.Fprintf(w, "stream: %d records per encoding (%d malformed, %d duplicates), %d customers, %d days, encodings %v\n\n",
		r.Stream.Records, r.Stream.Malformed, r.Stream.Duplicates, r.Stream.Customers, r.Stream.Days, r.Stream.Encodings)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range tableRows(r.Lines) {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if len(r.Work) > 0 {
		fmt.Fprintln(w, "\nwinback by commit interval, beside the baselines:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, row := range r.sweepRows() {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	for _, q := range r.Scheduled {
		fmt.Fprintf(w, "ClickHouse-only scheduled lapse query at %.1f s of ingest: %d rows stored, %d customers, %d lapsed, %.1f ms (server CPU %.3f s)\n",
			q.AtS, q.Rows, q.Customers, q.Lapsed, q.Seconds*1000, q.ServerCPU)
	}
	if len(r.Queries) > 0 {
		fmt.Fprintln(w, "\nClickHouse-only query over a growing history (above 100%: copies of the stream's history, shifted in time):")
		for _, q := range r.Queries {
			fmt.Fprintf(w, "  %3.0f%%  %9d rows  %7d customers  %6d lapsed  %8.1f ms with the rows to the client, %8.1f ms counted on the server  (server CPU %.3f s)\n",
				q.Fraction*100, q.Rows, q.Customers, q.Lapsed, q.Seconds*1000, q.CountSeconds*1000, q.ServerCPU)
		}
	}
	for _, x := range r.Restores {
		fmt.Fprintf(w, "restore: %s\n", x.summary())
	}
	for _, x := range r.Work {
		if x.Latency != nil {
			fmt.Fprintf(w, "latency, %s: %s\n", x.Run, x.Latency.summary())
		}
	}
	for _, x := range r.Work {
		fmt.Fprintf(w, "work: %s\n", x.summary())
	}
	for _, x := range r.Budgets {
		fmt.Fprintf(w, "wall budget: %s\n", x.summary())
	}
	for _, e := range r.Engine {
		fmt.Fprintf(w, "engine heap: %s\n", e.summary())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
}

// markdown renders the report for the README.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- generated by `make bench` (bench/), %s -->\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, %s of memory), %s, winback at %s.\n\n", r.Date.Format("2006-01-02"), r.Machine.CPU, r.Machine.Cores, r.Machine.MemTotal, r.Machine.GoVersion, cmp.Or(r.Commit, "an unknown commit"))
	fmt.Fprintf(&b, "Stream: %d records (%d malformed, %d duplicates) over %d customers and %d days of event time (%s to %s; marketing e-mail for 1 in %d customers), produced beforehand to a one-broker kfake (separate process, 6 partitions, uncompressed). Encodings: %s.\n\n",
		r.Stream.Records, r.Stream.Malformed, r.Stream.Duplicates, r.Stream.Customers, r.Stream.Days, r.Stream.From.Format("2006-01-02"), r.Stream.To.Format("2006-01-02"), max(1, r.Stream.EmailEvery), strings.Join(r.Stream.Encodings, ", "))
	if len(r.Work) > 0 {
		b.WriteString("**winback by commit interval, beside the baselines** (same run, same stream)\n\n")
		for i, row := range r.sweepRows() {
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			if i == 0 {
				b.WriteString("|---|---" + strings.Repeat("|--:", len(row)-2) + "|\n")
			}
		}
		b.WriteString("\nevents/CPU-s (own process) = events / the contender's own CPU s. ClickHouse server CPU per event is clickhouse-server's CPU while the contender ran, over its events. " +
			"Trigger latency p99: live e-mail unsubscribes after the run caught up, producer send → read_committed consumer of the trigger topic (winback_trigger_latency_seconds beside it); for the ClickHouse-only peer, its schedule plus its slowest query. " +
			"Triggers emitted: winback_triggers_total when caught up (every kind and reason). Heap per customer: go_memstats_heap_alloc_bytes over winback_customers_tracked when caught up (the whole process; the engine alone is below). " +
			"Batch bounded by: max_poll_records when the transactions held at least 90% of it, commit interval when they lasted 0.9 to 2 times it, one poll when longer (the records of one poll took longer than the interval), else neither.\n")
		if len(r.Engine) > 0 {
			var hs []string
			for _, e := range r.Engine {
				hs = append(hs, fmt.Sprintf("%.0f B at %d customers", e.BytesPerCust, e.Customers))
			}
			b.WriteString("The lapse engine alone (below): " + strings.Join(hs, ", ") + " of heap per tracked customer.\n")
		}
		b.WriteString("\n**All contenders**\n\n")
	}
	rows := tableRows(r.Lines)
	for i, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|---" + strings.Repeat("|--:", len(row)-1) + "|\n")
		}
	}
	b.WriteString("\nCPU s is the contender's own process (getrusage of the child; /proc for winback, read when it has caught up); events/s per core = events / CPU s. " +
		"The broker's and ClickHouse's CPU while each contender ran are in their own columns, and the last column divides the events by all three. \"vs goka\" is against goka with LevelDB, its default storage.\n")
	if len(r.Scheduled) > 0 {
		b.WriteString("\n**ClickHouse-only: its scheduled lapse query during ingest** (charged to its line)\n\n| at s of ingest | rows stored | customers | lapsed | query ms | server CPU s | client CPU s |\n|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, q := range r.Scheduled {
			fmt.Fprintf(&b, "| %.1f | %d | %d | %d | %.1f | %.3f | %.3f |\n", q.AtS, q.Rows, q.Customers, q.Lapsed, q.Seconds*1000, q.ServerCPU, q.ClientCPU)
		}
	}
	if len(r.Queries) > 0 {
		b.WriteString("\n**ClickHouse-only: the lapse query over a growing stored history** (median of 5 runs; above 100%, the stream's history copied forward in time on the server)\n\n| history | rows | customers | lapsed | query ms (rows to client) | query ms (counted on server) | server CPU s |\n|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, q := range r.Queries {
			fmt.Fprintf(&b, "| %.0f%% | %d | %d | %d | %.1f | %.1f | %.3f |\n", q.Fraction*100, q.Rows, q.Customers, q.Lapsed, q.Seconds*1000, q.CountSeconds*1000, q.ServerCPU)
		}
	}
	if len(r.Restores) > 0 || r.Latency != nil || len(r.Work) > 0 || len(r.Budgets) > 0 || len(r.Engine) > 0 {
		b.WriteString("\n**winback**\n\n")
	}
	for _, x := range r.Restores {
		fmt.Fprintf(&b, "- Restore, %s\n", x.summary())
	}
	for _, x := range r.Work {
		if x.Latency != nil {
			fmt.Fprintf(&b, "- Trigger latency, %s: %s\n", x.Run, x.Latency.summary())
		}
	}
	for _, x := range r.Work {
		fmt.Fprintf(&b, "- Work: %s\n", x.summary())
	}
	for _, x := range r.Budgets {
		fmt.Fprintf(&b, "- Wall budget: %s\n", x.summary())
	}
	for _, e := range r.Engine {
		fmt.Fprintf(&b, "- Engine heap: %s\n", e.summary())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- Note: %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "- FAILED: %s\n", f)
	}
	return b.String()
}
