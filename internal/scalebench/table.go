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
	fmt.Fprintln(w, "| N workers | apps | executors | cold start: workers/s (last registered) | regs/worker at leader (both masters) "+
		"| leader log: Registering / duplicate | CPU leader / standby / fleet | leader RSS / fds / goroutines: cold | after crash |")
	fmt.Fprintln(w, "|---:|---:|---:|---|---|---|---|---|---|")
	for _, r := range rs {
		c := r.Cold
		started := ""
		if r.StartRate > 0 {
			started = fmt.Sprintf("; started at %s/s", thousands(int(r.StartRate+0.5)))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s (%s%s) | %.2f (%.2f) | %s / %s | %s / %s / %s | %s | %s |\n",
			thousands(r.N), thousands(r.Apps), thousands(r.Executors),
			thousands(int(c.WorkersPerSecond(r.N)+0.5)), secs(c.Workers), started, c.PerWorker, c.Both,
			thousands(c.LogRegistering), thousands(c.LogDuplicates), secs(c.LeaderCPU), secs(c.StandbyCPU), secs(c.FleetCPU),
			usageCol(r.Leader), usageCol(r.usageAfterCrash()))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N workers | failover | standby ALIVE (× session) | ALIVE: min – max of runs | workers re-attached | apps re-attached | regs/worker at new leader "+
		"| new leader log: Registering / duplicate | workers that lost a heartbeat | commands dropped self-fenced | CPU new leader / fleet |")
	fmt.Fprintln(w, "|---:|---|---|---|---|---|---|---|---:|---:|---|")
	for _, r := range rs {
		for k, f := range []*Failover{r.Crash, r.Graceful} {
			if f == nil {
				continue
			}
			runs := r.CrashRuns
			if k == 1 {
				runs = r.GracefulRuns
			}
			workers, apps := secs(f.Workers), secs(f.Apps)
			if f.Err != nil {
				// Did not complete: how many followed the new leader.
				workers = fmt.Sprintf("incomplete: %s of %s", thousands(f.WorkersAttached), thousands(r.N))
				apps = fmt.Sprintf("incomplete: %s of %s", thousands(f.AppsAttached), thousands(r.Apps))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.2f | %s / %s | %s | %s | %s / %s |\n",
				thousands(r.N), SignalName(f.Signal), aliveX(f, r.Session), spread(runs), workers, apps, f.PerWorker,
				thousands(f.LogRegistering), thousands(f.LogDuplicates), thousands(int(f.HeartbeatLosses)),
				thousands(f.LogSelfFenced), secs(f.LeaderCPU), secs(f.FleetCPU))
		}
	}
}

// spread is the range of the runs' times to ALIVE and how many runs.
func spread(runs []Failover) string {
	lo, hi := time.Duration(0), time.Duration(0)
	for i, f := range runs {
		if i == 0 || f.Alive < lo {
			lo = f.Alive
		}
		hi = max(hi, f.Alive)
	}
	return fmt.Sprintf("%s – %s (%d)", secs(lo), secs(hi), len(runs))
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
	switch {
	case f == nil:
		return "-"
	case f.Alive <= 0:
		return "never ALIVE"
	case f.Err != nil:
		return fmt.Sprintf("%s (%.2f), re-attach incomplete", secs(f.Alive), f.Alive.Seconds()/session.Seconds())
	}
	return fmt.Sprintf("%s (%.2f)", secs(f.Alive), f.Alive.Seconds()/session.Seconds())
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
