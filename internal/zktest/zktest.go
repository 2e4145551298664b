// Package zktest starts real ZooKeeper ensembles (1, 3 or 5 servers) on
// loopback for tests, and a TCP proxy that can cut a client off.
//
// It runs the installed ZooKeeper: Debian's package (jar at
// /usr/share/java/zookeeper.jar, dependencies from its manifest), or
// $ZOOKEEPER_JAR (a jar), or $ZOOKEEPER_HOME (an Apache binary distribution:
// lib/*.jar and conf/). Java is $JAVA_HOME/bin/java or java on $PATH.
//
// Every server gets random free ports and a directory under t.TempDir(), runs
// in its own process group with a parent-death signal, and is killed in
// t.Cleanup, so no java process outlives a test, also when it fails. When a
// test fails, the tail of each server's log is written to the test log.
//
// Servers use a tiny tickTime (200ms) and allow sessions of 500ms to 60s, so
// tests can use 1-2 s sessions. Methods that take no error call t.Fatal and
// must be called from the test goroutine.
package zktest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server timing. Sessions may range over [MinSessionTimeout, MaxSessionTimeout].
const (
	TickTime          = 200 * time.Millisecond
	MinSessionTimeout = 500 * time.Millisecond
	MaxSessionTimeout = 60 * time.Second
)

// startTimeout bounds how long a fresh ensemble may take to become healthy
// (JVM start-up on a loaded 2-core machine plus a leader election).
const startTimeout = 60 * time.Second

// ErrNotInstalled means no ZooKeeper (or no java) was found.
var ErrNotInstalled = errors.New("zktest: zookeeper not installed")

// Ensemble is a running set of ZooKeeper servers.
type Ensemble struct {
	t       testing.TB
	java    string
	cp      string
	servers []*Server
}

// Server is one ZooKeeper server process of an Ensemble.
type Server struct {
	ID           int // myid, 1-based
	Dir          string
	ClientPort   int
	QuorumPort   int
	ElectionPort int

	e       *Ensemble
	cfgPath string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start starts an ensemble of n servers (1: standalone; 3 or 5: a quorum),
// waits until it is healthy and registers its teardown with t.Cleanup. It
// fails the test if ZooKeeper is not installed or does not come up.
func Start(t testing.TB, n int) *Ensemble {
	t.Helper()
	if n < 1 || n > 9 {
		t.Fatalf("zktest: ensemble size %d: want 1, 3 or 5", n)
	}
	java, cp, err := Classpath()
	if err != nil {
		t.Fatalf("%v (install the Debian package \"zookeeper\", e.g. with `make deps`, or set ZOOKEEPER_HOME or ZOOKEEPER_JAR)", err)
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		e := &Ensemble{t: t, java: java, cp: cp}
		root := t.TempDir() // before Cleanup(teardown): cleanups run last-in first-out
		t.Cleanup(e.teardown)
		if err := e.setup(n, root); err != nil {
			t.Fatalf("zktest: %v", err)
		}
		for _, s := range e.servers {
			if err := s.start(); err != nil {
				t.Fatalf("zktest: %v", err)
			}
		}
		lastErr = e.WaitHealthy(startTimeout)
		if lastErr == nil {
			return e
		}
		// A port picked as free may have been taken by another process
		// before java bound it: retry on fresh ports.
		if !e.portClash() {
			break
		}
		t.Logf("zktest: port clash, retrying ensemble start: %v", lastErr)
		e.teardown()
	}
	t.Fatalf("zktest: ensemble of %d did not become healthy: %v", n, lastErr)
	return nil
}

// Classpath finds java and the ZooKeeper classpath (see the package doc).
func Classpath() (java, cp string, err error) {
	java = "java"
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		java = filepath.Join(jh, "bin", "java")
	}
	if java, err = exec.LookPath(java); err != nil {
		return "", "", fmt.Errorf("%w: no java: %w", ErrNotInstalled, err)
	}
	var parts []string
	switch {
	case os.Getenv("ZOOKEEPER_JAR") != "":
		jar := os.Getenv("ZOOKEEPER_JAR")
		if _, err := os.Stat(jar); err != nil {
			return "", "", fmt.Errorf("%w: ZOOKEEPER_JAR=%s: %w", ErrNotInstalled, jar, err)
		}
		parts = append(parts, jar)
		if s := filepath.Join(filepath.Dir(jar), "slf4j-simple.jar"); exists(s) {
			parts = append(parts, s)
		}
	case os.Getenv("ZOOKEEPER_HOME") != "":
		home := os.Getenv("ZOOKEEPER_HOME")
		jars, _ := filepath.Glob(filepath.Join(home, "lib", "*.jar"))
		top, _ := filepath.Glob(filepath.Join(home, "*.jar"))
		jars = append(jars, top...)
		if len(jars) == 0 {
			return "", "", fmt.Errorf("%w: ZOOKEEPER_HOME=%s has no lib/*.jar or *.jar", ErrNotInstalled, home)
		}
		parts = append(parts, filepath.Join(home, "conf"))
		parts = append(parts, jars...)
	default:
		jar := "/usr/share/java/zookeeper.jar"
		if !exists(jar) {
			return "", "", fmt.Errorf("%w: %s not found", ErrNotInstalled, jar)
		}
		// The jar's manifest Class-Path names its dependencies; slf4j-simple
		// makes the server log to stderr (our log file).
		parts = append(parts, jar)
		if s := "/usr/share/java/slf4j-simple.jar"; exists(s) {
			parts = append(parts, s)
		}
	}
	return java, strings.Join(parts, string(os.PathListSeparator)), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePorts returns k distinct loopback ports that were free a moment ago.
func freePorts(k int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, k)
	for len(ports) < k {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		tcp, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("free port: unexpected address %v", ln.Addr())
		}
		ports = append(ports, tcp.Port)
	}
	return ports, nil
}

func (e *Ensemble) setup(n int, root string) error {
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		s := &Server{
			ID: i + 1, Dir: filepath.Join(root, fmt.Sprintf("zk%d", i+1)),
			ClientPort: ports[3*i], QuorumPort: ports[3*i+1], ElectionPort: ports[3*i+2],
			e: e,
		}
		s.cfgPath = filepath.Join(s.Dir, "zoo.cfg")
		s.logPath = filepath.Join(s.Dir, "server.log")
		e.servers = append(e.servers, s)
	}
	for _, s := range e.servers {
		data := filepath.Join(s.Dir, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			return err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "tickTime=%d\n", TickTime.Milliseconds())
		b.WriteString("initLimit=50\nsyncLimit=15\n")
		fmt.Fprintf(&b, "minSessionTimeout=%d\nmaxSessionTimeout=%d\n", MinSessionTimeout.Milliseconds(), MaxSessionTimeout.Milliseconds())
		fmt.Fprintf(&b, "dataDir=%s\n", data)
		fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=127.0.0.1\n", s.ClientPort)
		b.WriteString("admin.enableServer=false\n4lw.commands.whitelist=*\n")
		b.WriteString("forceSync=no\npreAllocSize=1024\nmaxClientCnxns=0\n")
		if n > 1 {
			b.WriteString("standaloneEnabled=false\nreconfigEnabled=false\n")
			for _, o := range e.servers {
				fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", o.ID, o.QuorumPort, o.ElectionPort)
			}
			if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(s.ID)+"\n"), 0o644); err != nil {
				return err
			}
		}
		if err := os.WriteFile(s.cfgPath, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// start launches the server process (same config, data and ports as before).
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && !closed(s.exited) {
		return nil // already running
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== zktest: starting server %d at %s ====\n", s.ID, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.e.java,
		"-Xmx128m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-XX:-UsePerfData", "-Djava.awt.headless=true",
		"-Dzookeeper.cnxTimeout=1000",
		"-Dzookeeper.snapshot.trust.empty=true",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-cp", s.e.cp,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", s.cfgPath)
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start server %d: %w", s.ID, err)
	}
	logf.Close() // the child has its own descriptor
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return nil
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// signal sends sig to the server's process group and waits up to wait for it
// to exit; then it kills the group.
func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || closed(exited) {
		return nil
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("server %d (pid %d) did not exit after SIGKILL", s.ID, pid)
		}
	}
	// Reap anything left in the group (java forks nothing, but be sure).
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return nil
}

// Running reports whether the server's process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil && !closed(s.exited)
}

// Addr is the server's client address, 127.0.0.1:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ClientPort)) }

// LogPath is the server's log file.
func (s *Server) LogPath() string { return s.logPath }

// Mode asks the server with `srvr` for its mode: "leader", "follower" or
// "standalone". A server that is not serving (no quorum, electing) gives an
// error.
func (s *Server) Mode() (string, error) {
	out, err := FourLetterWord(s.Addr(), "srvr", 2*time.Second)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("zktest: server %d not serving: %q", s.ID, strings.TrimSpace(string(out)))
}

// FourLetterWord sends a ZooKeeper four-letter command to addr and returns
// the reply.
func FourLetterWord(addr, cmd string, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, cmd); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// Servers are the ensemble's servers, in myid order.
func (e *Ensemble) Servers() []*Server { return e.servers }

// Connect is the client connect string of all servers.
func (e *Ensemble) Connect() string {
	addrs := make([]string, len(e.servers))
	for i, s := range e.servers {
		addrs[i] = s.Addr()
	}
	return strings.Join(addrs, ",")
}

func (e *Ensemble) server(i int) *Server {
	e.t.Helper()
	if i < 0 || i >= len(e.servers) {
		e.t.Fatalf("zktest: no server %d in an ensemble of %d", i, len(e.servers))
	}
	return e.servers[i]
}

// Stop stops server i (0-based) with SIGTERM and waits for it to exit.
func (e *Ensemble) Stop(i int) {
	e.t.Helper()
	if err := e.server(i).signal(syscall.SIGTERM, 15*time.Second); err != nil {
		e.t.Fatalf("zktest: stop: %v", err)
	}
}

// Kill kills server i (0-based) with SIGKILL and waits for it to exit.
func (e *Ensemble) Kill(i int) {
	e.t.Helper()
	if err := e.server(i).signal(syscall.SIGKILL, 10*time.Second); err != nil {
		e.t.Fatalf("zktest: kill: %v", err)
	}
}

// Start restarts server i (0-based) with its data and ports. It does not wait
// for the server to serve: use WaitHealthy.
func (e *Ensemble) Start(i int) {
	e.t.Helper()
	if err := e.server(i).start(); err != nil {
		e.t.Fatalf("zktest: %v", err)
	}
}

// Leader is the index of the server whose `srvr` mode is leader (or
// standalone), or -1 if none says so right now.
func (e *Ensemble) Leader() int {
	for i, s := range e.servers {
		if !s.Running() {
			continue
		}
		if m, err := s.Mode(); err == nil && (m == "leader" || m == "standalone") {
			return i
		}
	}
	return -1
}

// WaitHealthy waits until every running server serves clients (mode leader,
// follower or standalone) and exactly one is the leader. Stopped servers are
// skipped; with none running it fails.
func (e *Ensemble) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := e.healthy()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("zktest: not healthy after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *Ensemble) healthy() error {
	running, leaders := 0, 0
	for _, s := range e.servers {
		if !s.Running() {
			continue
		}
		running++
		m, err := s.Mode()
		if err != nil {
			return fmt.Errorf("server %d: %w", s.ID, err)
		}
		switch m {
		case "leader", "standalone":
			leaders++
		case "follower":
		default:
			return fmt.Errorf("server %d: mode %q", s.ID, m)
		}
	}
	if running == 0 {
		return errors.New("no server running")
	}
	if leaders != 1 {
		return fmt.Errorf("%d leaders", leaders)
	}
	return nil
}

// portClash reports whether a server failed to bind a port.
func (e *Ensemble) portClash() bool {
	for _, s := range e.servers {
		b, _ := os.ReadFile(s.logPath)
		if bytes.Contains(b, []byte("Address already in use")) || bytes.Contains(b, []byte("BindException")) {
			return true
		}
	}
	return false
}

// teardown kills every server and, when the test failed, logs the tail of
// each server's log.
func (e *Ensemble) teardown() {
	for _, s := range e.servers {
		if err := s.signal(syscall.SIGKILL, 10*time.Second); err != nil {
			e.t.Errorf("zktest: teardown: %v", err)
		}
	}
	if e.t.Failed() {
		for _, s := range e.servers {
			e.t.Logf("zktest: tail of %s:\n%s", s.logPath, tail(s.logPath, 40))
		}
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
