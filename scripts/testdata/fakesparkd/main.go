// Command fakesparkd stands in for bin/sparkd in the daemon.sh tests, where
// the daemon's own behaviour is not under test: it prints a line, then waits
// for SIGTERM. FAKE_IGNORE_TERM=1 makes it ignore SIGTERM (to test SIGKILL
// escalation); FAKE_FAIL=1 makes it fail at once, like a bad configuration.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getenv("FAKE_FAIL") != "" {
		fmt.Fprintln(os.Stderr, "conf: spark.deploy.recoveryMode=\"BOGUS\" (from flag): unknown recovery mode")
		os.Exit(1)
	}
	// The handler is installed before the banner: a test that signals on
	// seeing the banner must reach the handler, not the default action.
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGPWR)
	fmt.Printf("fake sparkd %v started\n", os.Args[1:])
	for s := range ch {
		fmt.Printf("got %v\n", s)
		if s == syscall.SIGTERM && os.Getenv("FAKE_IGNORE_TERM") == "" {
			return
		}
	}
}
