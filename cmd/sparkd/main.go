// Command sparkd is the single sparkd binary: master and worker daemons, the
// submit and status clients, and version. main owns flags, signals and
// wiring; it is the only place that chooses implementations.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sparkd/sparkd/internal/webui"
)

// Set by the linker (see Makefile).
var (
	version = "dev"
	commit  = "unknown"
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"master", "run a master daemon (leader or standby)", runMaster},
		{"worker", "run a worker daemon: sparkd worker spark://m1:7077,m2:7077", runWorker},
		{"submit", "submit an application (spark-submit's flags)", runSubmit},
		{"executor", "run a task executor backend (launched by a worker for submit --tasks)", runExecutor},
		{"status", "show which master leads and what the cluster runs", runStatus},
		{"version", "print the version and git commit", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sparkd <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'sparkd <command> --help' for a command's flags.\n")
}

func main() {
	webui.Version = version
	stop := startProfiles()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(stdout)
		return 0
	case "-v", "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sparkd: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "Usage: sparkd version\n")
		return 2
	}
	fmt.Fprintf(stdout, "sparkd %s (commit %s)\n", version, commit)
	return 0
}
