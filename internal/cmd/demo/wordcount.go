package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/task/appui"
)

var (
	execRE = regexp.MustCompile(`Registered executor (\S+) on \S+ \(pid (\d+)\)`)
)

// runWordcount runs the wordcount example through a SIGKILL of one of its
// executors and of the leading master, and compares its output with
// `tr -s '[:space:]' '\n' | sort | uniq -c` over the same input.
func runWordcount(tb *cluster.TB, c *cluster.Cluster, bin string) int {
	abs, err := filepath.Abs(bin)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		tb.Errorf("the wordcount example: %v (make build makes bin/wordcount)", err)
		return 1
	}
	dir := tb.TempDir()
	input := filepath.Join(dir, "words.txt")
	r := rand.New(rand.NewPCG(2026, 13))
	vocab := strings.Fields("spark sparkd master worker executor driver task job zookeeper epoch leader standby failover go naïve")
	var b strings.Builder
	for b.Len() < 300<<10 {
		b.WriteString(vocab[r.IntN(len(vocab))])
		b.WriteString([]string{" ", " ", "\n", "\t", "  "}[r.IntN(5)])
	}
	if err := os.WriteFile(input, []byte(b.String()), 0o644); err != nil {
		tb.Errorf("%v", err)
		return 1
	}
	say("wordcount: %d KiB of words; each executor fetches the program from the driver (workers have no copy of it)", b.Len()>>10)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"--master", c.MasterURLs(), "--chunk", "4k", "--task-delay", "150ms",
		"--conf", "spark.executor.cores=1", "--conf", "spark.executor.memory=64m",
		"--conf", "spark.network.timeout=4s", "--conf", "spark.executor.heartbeatInterval=500ms", input}
	say("%s %s", bin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, abs, args...)
	out, errOut := &cluster.SyncBuffer{}, &cluster.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		tb.Errorf("start wordcount: %v", err)
		return 1
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		for _, m := range execRE.FindAllStringSubmatch(errOut.String(), -1) {
			if pid, err := strconv.Atoi(m[2]); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	fail := func(format string, a ...any) int {
		tb.Errorf(format, a...)
		fmt.Printf("---- wordcount stderr ----\n%s", errOut)
		return 1
	}
	var victim []string
	if !cluster.WaitFor(60*time.Second, func() bool {
		m := execRE.FindAllStringSubmatch(errOut.String(), -1)
		if len(m) >= 3 && completed(errOut.String()) >= 6 {
			victim = m[0]
			return true
		}
		return false
	}) {
		return fail("wordcount's executors did not start, or ran no task")
	}
	say("wordcount is running: %d executors, %d tasks done", len(execRE.FindAllString(errOut.String(), -1)), completed(errOut.String()))
	pid, _ := strconv.Atoi(victim[2])
	say("kill -9 executor %s (pid %d)", victim[1], pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fail("kill executor: %v", err)
	}
	leader, _, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		return fail("%v", err)
	}
	say("kill -9 %s (the leader, pid %d)", c.Masters[leader].Name, c.Masters[leader].Pid())
	f, err := c.Failover(syscall.SIGKILL, "Word Count", 60*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	say("%s took over at epoch %d, %s after the kill; Word Count re-attached %s after it", c.Masters[f.New].Name, f.Epoch,
		f.Alive.Round(time.Millisecond), f.App.Round(time.Millisecond))
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return fail("wordcount did not finish")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		return fail("wordcount exited %d", code)
	}
	for _, l := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(l, "Lost executor") || strings.Contains(l, "Master changed") || strings.Contains(l, "finished:") {
			fmt.Println("    wordcount: " + l)
		}
	}
	pipe := exec.Command("bash", "-c", `tr -s '[:space:]' '\n' < "$1" | sort | uniq -c`, "wc", input)
	pipe.Env = append(os.Environ(), "LC_ALL=C")
	want, err := pipe.Output()
	if err != nil {
		return fail("the coreutils pipeline: %v", err)
	}
	if out.String() != string(want) {
		return fail("wordcount's output differs from the coreutils pipeline's:\n%s\nwant:\n%s", out, want)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	say("wordcount's output equals LC_ALL=C tr -s '[:space:]' '\\n' | sort | uniq -c, byte for byte (%d distinct words):", len(lines))
	for _, l := range lines[:min(5, len(lines))] {
		fmt.Println("  " + l)
	}
	say("restarting %s", c.Masters[f.Old].Name)
	c.RestartMaster(f.Old)
	if !cluster.WaitFor(30*time.Second, func() bool {
		li, err := c.LeaderInfo(f.Old)
		return err == nil && li.State == protocol.MasterStandby
	}) {
		return fail("the restarted master did not come back as STANDBY")
	}
	say("%s is back as STANDBY; %s leads", c.Masters[f.Old].Name, c.Masters[f.New].Name)
	return 0
}

// completed is how many tasks wordcount's application UI counts as done.
func completed(stderr string) int { return appui.CompletedTasks(appui.URLFromLog(stderr)) }
