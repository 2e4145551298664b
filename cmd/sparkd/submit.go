package main

import (
	"flag"
	"fmt"
	"io"
)

// runSubmit is a placeholder until its issue lands: it parses --help and prints usage.
func runSubmit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sparkd submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "Usage: sparkd submit [flags]\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	fs.Usage()
	return 2
}
