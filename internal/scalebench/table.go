package scalebench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// PrintTables writes the table (crash and graceful standby ALIVE,
// leader RSS and fds) and the full one (cold start, re-attach, registrations
// per worker, goroutines) as Markdown.
func PrintTables(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| N workers | crash: standby ALIVE (× session) | graceful: standby ALIVE | leader RSS | fds |")
	fmt.Fprintln(w, "|---:|---|---|---:|---:|")
	for _, r := range rs {
		u := r.usageAfterCrash()
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", thousands(r.N), aliveX(r.Crash, r.Session), alive(r.Graceful),
			mib(u.RSSBytes), thousands(u.FDs))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N workers | apps | executors | cold start: workers/s (all registered) | regs/worker at leader (both masters) "+
		"| crash: all re-attached (after ALIVE) | crash: regs/worker at new leader | graceful: all re-attached (after ALIVE) "+
		"| graceful: regs/worker | leader RSS / fds / goroutines: cold start | after crash |")
	fmt.Fprintln(w, "|---:|---:|---:|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %s | %s (%s) | %.2f (%.2f) | %s | %s | %s | %s | %s | %s |\n",
			thousands(r.N), thousands(r.Apps), thousands(r.Executors),
			thousands(int(r.Cold.WorkersPerSecond(r.N)+0.5)), secs(r.Cold.Workers), r.Cold.PerWorker, r.Cold.Both,
			attachedCol(r.Crash), regs(r.Crash), attachedCol(r.Graceful), regs(r.Graceful),
			usageCol(r.Leader), usageCol(r.usageAfterCrash()))
	}
}

// usageAfterCrash is the new leader's footprint after the crash failover
// (the cold-start leader's when there was none).
func (r Result) usageAfterCrash() Usage {
	if r.Crash != nil && r.Crash.Leader.RSSBytes > 0 {
		return r.Crash.Leader
	}
	return r.Leader
}

func secs(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%.3f s", d.Seconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func alive(f *Failover) string {
	if f == nil {
		return "-"
	}
	return secs(f.Alive)
}

func aliveX(f *Failover, session time.Duration) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%.2f)", secs(f.Alive), f.Alive.Seconds()/session.Seconds())
}

func attachedCol(f *Failover) string {
	if f == nil || f.Attached <= 0 {
		return "-"
	}
	after := f.Attached - f.Alive
	if after <= 0 {
		// Everything answered the new leader before it was seen ALIVE
		// (it becomes ALIVE once the last peer has answered).
		return fmt.Sprintf("%s (+0)", secs(f.Attached))
	}
	return fmt.Sprintf("%s (+%s)", secs(f.Attached), secs(after))
}

func regs(f *Failover) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", f.PerWorker)
}

func usageCol(u Usage) string {
	if u.RSSBytes == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", mib(u.RSSBytes), thousands(u.FDs), thousands(u.Goroutines))
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d MiB", (b+1<<19)>>20)
}

// thousands writes n with commas: 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
