package main

import (
	"flag"
	"fmt"
	"io"
)

// runWorker is a placeholder until its issue lands: it parses --help and prints usage.
func runWorker(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sparkd worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "Usage: sparkd worker [flags]\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	fs.Usage()
	return 2
}
