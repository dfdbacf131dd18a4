// Command winback watches orders, email engagement and support tickets on
// Kafka, spots customers who are lapsing, writes per-customer aggregates to
// ClickHouse and emits win-back triggers.
//
//	winback run       production: real Kafka, schema registry and ClickHouse
//	winback dev       the embedded default: kfake, srfake and a local ClickHouse
//	winback gen       produce synthetic traffic to any cluster
//	winback migrate   apply the ClickHouse DDL
//	winback backtest  replay history through the signal engine, no side effects
//	winback evaluate  measure the lapse score against what happened after a cutoff
//	winback config    print the config reference, or the settings in effect
//	winback erase     request the erasure (GDPR, CCPA) of customers
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/winback/winback/config"
)

const usage = `winback spots lapsing customers on Kafka and emits win-back triggers.

Usage:
  winback <command> [flags]

Commands:
  run       run the pipeline against real Kafka, a schema registry and ClickHouse
  dev       run the pipeline on the embedded default (kfake, srfake, local ClickHouse)
  gen       produce synthetic traffic (orders, emails, tickets) to a cluster,
            or write it to a JSON-lines file (--out FILE)
  migrate   apply the ClickHouse tables and views, then exit
  backtest  replay history through the signal engine and report how triggers did
  evaluate  score every customer as of a cutoff and measure who came back (AUC, Brier, lift)
  config    print every setting with its flag, env variable and default
            (--effective: the settings in effect, secrets redacted)
  erase     request the erasure (GDPR, CCPA) of customers: CUSTOMER_ID... or - (stdin)

Run 'winback <command> -h' for the flags of a command. Settings come from
flags, then WINBACK_* environment variables, then --config FILE, then
defaults. 'winback --version' prints the version.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 on
// success, 2 for bad usage or configuration, 1 for a failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"run":      cmdRun,
		"dev":      cmdDev,
		"gen":      cmdGen,
		"migrate":  cmdMigrate,
		"backtest": cmdBacktest,
		"evaluate": cmdEvaluate,
		"config":   cmdConfig,
		"erase":    cmdErase,
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(stderr, "winback: unknown command %q%s\nCommands: %s. Run 'winback --help' for what each does.\n",
			name, config.DidYouMean(name, names, nil), strings.Join(names, ", "))
		return 2
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "winback %s: %v\nRun 'winback %s -h' for its flags and 'winback config' for every setting.\n", name, err, name)
		return 2
	default:
		fmt.Fprintf(stderr, "winback %s: %v\n", name, err)
		return 1
	}
}

// usageError is a mistake in flags or configuration: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
