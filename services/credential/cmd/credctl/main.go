// Command credctl is the operators' command-line tool for the credential
// service, through the gateway.
//
//	credctl <command> [flags]
//
// Commands register themselves in commands from their own files' init(), so
// each lives in its own file (import.go: `credctl import`).
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
	"syscall"
)

// command is one credctl subcommand.
type command struct {
	// Summary is the one-line description in the usage.
	Summary string
	// Run executes the command with the arguments after its name; stdout and
	// stderr are where it reports.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands maps subcommand names to their implementation; files add theirs in init().
var commands = map[string]command{}

// errUsage makes main exit 2 (the flag package already printed the usage).
var errUsage = errors.New("usage")

// parseError is what a command returns when its flags do not parse: -h is
// flag.ErrHelp (exit 0, the flags were printed), anything else errUsage.
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	return errUsage
}

// Global connection settings shared by the commands: flags override these
// environment variables.
const (
	envURL    = "CREDCTL_URL"
	envAPIKey = "CREDCTL_API_KEY"
)

// connFlags adds --url and --api-key to fs.
func connFlags(fs *flag.FlagSet) (url, apiKey *string) {
	def := os.Getenv(envURL)
	if def == "" {
		def = "http://localhost:8000"
	}
	url = fs.String("url", def, "gateway base URL (env "+envURL+")")
	apiKey = new(string)
	*apiKey = os.Getenv(envAPIKey)
	fs.Var(secretValue{apiKey}, "api-key", "API key, sent as Authorization: Bearer (env "+envAPIKey+")")
	return url, apiKey
}

// secretValue is a string flag whose value never shows: -h prints a flag's
// default, which for --api-key is the key from the environment.
type secretValue struct{ p *string }

func (s secretValue) String() string { return "" }

func (s secretValue) Set(v string) error { *s.p = v; return nil }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: credctl <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w, "\nRun credctl <command> -h for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "credctl: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.Run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // asked for: the flags were printed
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "credctl %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
