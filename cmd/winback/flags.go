package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/winback/winback/config"
)

// newFlagSet makes a command's flag set. Its usage is printed for -h only
// (a mistake gets one line: the error, a "did you mean" and a pointer to
// -h) and lists the command's own flags before the shared settings.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("winback "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr, fs, name, synopsis) }
	return fs
}

// settingFlags are the flags config.Bind registers.
func settingFlags() map[string]bool {
	cfg := config.Default()
	m := map[string]bool{"config": true}
	for _, s := range config.Settings(&cfg) {
		m[s.Flag] = true
	}
	return m
}

func printUsage(w io.Writer, fs *flag.FlagSet, name, synopsis string) {
	fmt.Fprintf(w, "Usage: winback %s [flags]\n\n%s\n\n", name, synopsis)
	shared := settingFlags()
	var own, set int
	fs.VisitAll(func(f *flag.Flag) {
		if shared[f.Name] {
			set++
		} else {
			own++
		}
	})
	part := func(keep func(string) bool) {
		sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		sub.SetOutput(w)
		fs.VisitAll(func(f *flag.Flag) {
			if keep(f.Name) {
				sub.Var(f.Value, f.Name, f.Usage)
			}
		})
		sub.PrintDefaults()
	}
	if own > 0 {
		fmt.Fprintf(w, "Flags of %s:\n", name)
		part(func(n string) bool { return !shared[n] })
	}
	if set > 0 {
		if own > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Settings (flag, then WINBACK_* env, then --config file; 'winback config' lists them all):\n")
		part(func(n string) bool { return shared[n] })
	}
}

// parseFlags parses args quietly: -h prints the usage and returns
// flag.ErrHelp; a mistake returns a usageError with a suggestion.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	}
	return usageError{flagError(fs, err)}
}

// boolApart refuses "--flag false" for a boolean flag (see loadConfig).
func boolApart(fs *flag.FlagSet, args []string) error {
	first, before := fs.Arg(0), len(args)-fs.NArg()-1
	if fs.NArg() == 0 || before < 0 {
		return nil
	}
	if _, err := strconv.ParseBool(first); err != nil {
		return nil
	}
	flagArg := args[before]
	name := strings.TrimLeft(flagArg, "-")
	f := fs.Lookup(name)
	if f == nil || name == flagArg || strings.Contains(name, "=") {
		return nil
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
		return nil
	}
	return usageError{fmt.Errorf("--%s takes no separate value: write --%s=%s (the flags after %q were not read)", name, name, first, first)}
}

// noArgs refuses arguments after the flags of a command that takes none;
// hint says what to do instead (or is empty).
func noArgs(fs *flag.FlagSet, hint string) error {
	if fs.NArg() == 0 {
		return nil
	}
	if hint == "" {
		hint = fs.Name() + " takes flags only"
	}
	return usageError{fmt.Errorf("unexpected argument %q; %s", fs.Arg(0), hint)}
}

var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	reInvalid   = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): (?:parse error$)?(.*)$`)
	reNoArg     = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// flagError rewrites the flag package's messages with -- and a "did you
// mean" for an unknown flag.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		name, _, _ := strings.Cut(m[1], "=")
		return fmt.Errorf("unknown flag --%s%s", name, config.DidYouMean(name, names, func(s string) string { return "--" + s }))
	}
	if m := reInvalid.FindStringSubmatch(msg); m != nil {
		if m[3] == "" {
			return fmt.Errorf("--%s: %q is not valid", m[2], m[1])
		}
		return fmt.Errorf("--%s: %s", m[2], m[3])
	}
	if m := reNoArg.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("--%s needs a value", m[1])
	}
	return err
}

// oneOf is the message for a value that is not one of options, with a
// "did you mean" for a near miss.
func oneOf(got string, options ...string) string {
	list := strings.Join(options[:len(options)-1], ", ") + " or " + options[len(options)-1]
	return fmt.Sprintf("%q is not one of %s%s", got, list, config.DidYouMean(got, options, nil))
}
