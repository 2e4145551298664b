//go:build unix

package fleetsim

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit sets the process's RLIMIT_NOFILE soft limit to want, or to
// the hard limit when want is 0. A want above the hard limit raises the hard
// limit too, which needs privilege (CAP_SYS_RESOURCE, or root); without it
// the error names what an operator must set (ulimit -Hn, LimitNOFILE= in a
// systemd unit, nofile in /etc/security/limits.conf). Processes started
// afterwards inherit the new limits. It returns the limits in force.
func RaiseFileLimit(want uint64) (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("fleetsim: getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if want == 0 {
		want = rl.Max
	}
	next := rl
	next.Cur = want
	if want > rl.Max {
		next.Max = want
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		return rl.Cur, rl.Max, fmt.Errorf("fleetsim: raise the open-file limit (RLIMIT_NOFILE) from %d (hard %d) to %d: %w; "+
			"raise the hard limit first (ulimit -Hn %d as root, LimitNOFILE=%d in a systemd unit, or nofile in /etc/security/limits.conf)",
			rl.Cur, rl.Max, want, err, want, want)
	}
	return next.Cur, next.Max, nil
}
