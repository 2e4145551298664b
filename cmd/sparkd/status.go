package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/go-zookeeper/zk"
	"github.com/sparkd/sparkd/client"
	"github.com/sparkd/sparkd/conf"

	"github.com/sparkd/sparkd/protocol"
	"github.com/sparkd/sparkd/recovery/zkrecovery"
	"github.com/sparkd/sparkd/zkutil"
)

const statusUsage = `Usage: sparkd status [--master spark://h1:7077,h2:7077] [--zk host:2181,... --zk-dir /spark] [--json]

Shows which master leads (epoch, since when), every master's state, the alive
workers, cores and memory in use, and the applications and drivers.
Exit status: 0 when a master is ALIVE, 1 otherwise, 2 on bad usage.

Options:
`

// statusReport is what `sparkd status --json` prints.
type statusReport struct {
	Leader  *leaderReport   `json:"leader"`
	Masters []masterReport  `json:"masters"`
	Cluster *clusterSummary `json:"cluster,omitempty"`
	// State is the leader's /json document, verbatim.
	State    json.RawMessage `json:"state,omitempty"`
	ZKEpoch  *zkEpoch        `json:"zkEpoch,omitempty"`
	Problems []string        `json:"problems,omitempty"`
}

type leaderReport struct {
	ID    string `json:"id,omitempty"`
	URL   string `json:"url"`
	Epoch int64  `json:"epoch"`
	Since string `json:"since,omitempty"`
	WebUI string `json:"webUiUrl,omitempty"`
	REST  string `json:"restUrl,omitempty"`
}

type masterReport struct {
	URL       string `json:"url"`
	ID        string `json:"id,omitempty"`
	State     string `json:"state"`
	Epoch     int64  `json:"epoch,omitempty"`
	LeaderURL string `json:"leaderUrl,omitempty"`
	Error     string `json:"error,omitempty"`
}

type clusterSummary struct {
	Workers          int             `json:"workers"`
	AliveWorkers     int             `json:"aliveWorkers"`
	Cores            int             `json:"cores"`
	CoresUsed        int             `json:"coresUsed"`
	MemoryMB         int             `json:"memoryMb"`
	MemoryUsedMB     int             `json:"memoryUsedMb"`
	WorkerList       []workerSummary `json:"workerList"`
	ActiveApps       []appSummary    `json:"activeApps"`
	CompletedApps    int             `json:"completedApps"`
	ActiveDrivers    []driverSummary `json:"activeDrivers"`
	CompletedDrivers int             `json:"completedDrivers"`
}

type workerSummary struct {
	ID         string `json:"id"`
	Host       string `json:"host"`
	State      string `json:"state"`
	Port       int    `json:"port"`
	Cores      int    `json:"cores"`
	CoresUsed  int    `json:"coresUsed"`
	MemoryMB   int    `json:"memoryMb"`
	MemoryUsed int    `json:"memoryUsedMb"`
}

type appSummary struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
	Cores int    `json:"cores"`
}

type driverSummary struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Worker string `json:"worker"`
	Cores  int    `json:"cores"`
}

type zkEpoch struct {
	Epoch  int64  `json:"epoch"`
	Leader string `json:"leader,omitempty"`
	Since  string `json:"since,omitempty"`
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sparkd status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, statusUsage); printFlags(stderr, fs) }
	masterFlag := fs.String("master", "", "master URLs (default $SPARK_MASTER)")
	zkURL := fs.String("zk", "", "ZooKeeper connect string; finds the masters from <zk-dir>/leader_election")
	zkDir := fs.String("zk-dir", "/spark", "spark.deploy.zookeeper.dir")
	zkAuth := fs.String("zk-auth", os.Getenv("SPARKD_ZK_AUTH"), "user:password digest credentials for an ACL-protected directory (spark.deploy.zookeeper.auth; default $SPARKD_ZK_AUTH)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout")
	secret := fs.String("secret", os.Getenv("SPARK_AUTHENTICATE_SECRET"), "spark.authenticate.secret, if set on the cluster")
	tlsCA := fs.String("tls-trust-store", "", "PEM CA bundle: talk to masters over TLS (spark.ssl.rpc.trustStore)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate for mutual TLS (spark.ssl.rpc.certChain)")
	tlsKey := fs.String("tls-key", "", "PEM private key for mutual TLS (spark.ssl.rpc.privateKey)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sparkd status: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4**timeout)
	defer cancel()
	rep := statusReport{}
	var masters []string
	if *masterFlag == "" && *zkURL == "" {
		*masterFlag = os.Getenv("SPARK_MASTER")
	}
	if *masterFlag != "" {
		m, err := conf.ParseMasterURLs(*masterFlag)
		if err != nil {
			fmt.Fprintf(stderr, "sparkd status: --master: %v\n", err)
			return 2
		}
		masters = m
	}
	zkFailed := false
	if *zkURL != "" {
		found, ep, err := mastersFromZK(ctx, *zkURL, *zkDir, *zkAuth, *timeout)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
			zkFailed = found == nil
		}
		rep.ZKEpoch = ep
		for _, f := range found {
			if !containsMaster(masters, f) {
				masters = append(masters, f)
			}
		}
	}
	if len(masters) == 0 {
		if *zkURL == "" {
			fmt.Fprintln(stderr, "sparkd status: no master given: use --master spark://h1:7077,h2:7077 or --zk host:2181")
			return 2
		}
		if !zkFailed { // else ZooKeeper's error is the one problem: nothing was listed
			rep.Problems = append(rep.Problems, fmt.Sprintf("no master candidates registered in ZooKeeper under %s/leader_election (is --zk-dir spark.deploy.zookeeper.dir?)", *zkDir))
		}
	}
	rpc := operatorClient(*timeout, *secret)
	if *tlsCA != "" || *tlsCert != "" {
		tl, err := protocol.LoadClientTLS(protocol.TLSFiles{TrustStore: *tlsCA, CertChain: *tlsCert, PrivateKey: *tlsKey})
		if err != nil {
			fmt.Fprintf(stderr, "sparkd status: %v\n", err)
			return 2
		}
		tl.Apply(rpc)
	}
	gatherStatus(ctx, rpc, masters, &rep)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printStatus(stdout, rep)
	}
	if rep.Leader == nil {
		return 1
	}
	return 0
}

func containsMaster(list []string, m string) bool {
	for _, x := range list {
		if protocol.HTTPBase(x) == protocol.HTTPBase(m) {
			return true
		}
	}
	return false
}

// mastersFromZK reads the candidates under <dir>/leader_election and the
// epoch znode.
func mastersFromZK(ctx context.Context, connect, dir, auth string, timeout time.Duration) ([]string, *zkEpoch, error) {
	if _, _, err := zkutil.ParseConnect(connect); err != nil {
		return nil, nil, fmt.Errorf("--zk %q: %w", connect, err)
	}
	conn, err := zkutil.Connect(ctx, zkutil.Config{Connect: connect, SessionTimeout: 4 * time.Second,
		ConnectTimeout: timeout, CallTimeout: timeout, Logger: quietEntry(), Auth: auth})
	if err != nil {
		return nil, nil, fmt.Errorf("ZooKeeper %s is unreachable, so no master could be found there: %w", connect, err)
	}
	defer conn.Close()
	var ep *zkEpoch
	if data, _, err := conn.Get(ctx, path.Join(dir, "epoch")); err == nil {
		var e zkEpoch
		if json.Unmarshal(data, &e) == nil {
			ep = &e
		}
	}
	cands, err := zkrecovery.Candidates(ctx, conn, dir)
	if errors.Is(err, zk.ErrNoAuth) {
		return nil, ep, fmt.Errorf("zookeeper %s: %s is ACL-protected; give its credentials with --zk-auth user:password (spark.deploy.zookeeper.auth): %w", connect, dir, err)
	}
	if err != nil {
		return nil, ep, fmt.Errorf("zookeeper %s: list candidates under %s: %w", connect, dir, err)
	}
	var out, bad []string
	for _, c := range cands { // election order: the first leads or is about to
		if c.Err != nil || c.RPCURL == "" {
			bad = append(bad, c.Name)
			continue
		}
		out = append(out, strings.TrimPrefix(c.RPCURL, "spark://"))
	}
	if len(bad) > 0 {
		return out, ep, fmt.Errorf("zookeeper: candidate node(s) %s under %s/leader_election have no readable rpcUrl", strings.Join(bad, ", "), dir)
	}
	return out, ep, nil
}

// gatherStatus probes every master and reads the leader's /json document.
func gatherStatus(ctx context.Context, rpc *protocol.Client, masters []string, rep *statusReport) {
	probes := client.ProbeMasters(ctx, rpc, masters)
	// A standby names the leader; one not in the list is probed too, so that
	// asking any one master is enough.
	var hinted []string
	for _, p := range probes {
		if p.Err == nil && p.Info.State != protocol.MasterAlive && p.Info.LeaderURL != "" &&
			!containsMaster(masters, p.Info.LeaderURL) && !containsMaster(hinted, p.Info.LeaderURL) {
			hinted = append(hinted, p.Info.LeaderURL)
		}
	}
	if len(hinted) > 0 {
		probes = append(probes, client.ProbeMasters(ctx, rpc, hinted)...)
	}
	var leader *protocol.LeaderInfo
	var leaderAddr string
	for i := range probes {
		p := probes[i]
		mr := masterReport{URL: protocol.SparkURL(strings.TrimPrefix(p.Master, "spark://"))}
		var se *protocol.StatusError
		switch {
		case errors.As(p.Err, &se) && se.Code == http.StatusUnauthorized:
			mr.State = "AUTH FAILED"
			mr.Error = "authentication failed: spark.authenticate.secret (--secret, SPARK_AUTHENTICATE_SECRET) does not match the master's"
		case p.Err != nil:
			mr.State = "UNREACHABLE"
			mr.Error = shortErr(p.Err)
		default:
			mr.ID, mr.State, mr.Epoch, mr.LeaderURL = p.Info.ID, string(p.Info.State), p.Info.Epoch, p.Info.LeaderURL
			if p.Info.URL != "" {
				mr.URL = p.Info.URL
			}
			if p.Info.State == protocol.MasterAlive && (leader == nil || p.Info.Epoch > leader.Epoch) {
				leader = &probes[i].Info
				leaderAddr = p.Master
			}
		}
		rep.Masters = append(rep.Masters, mr)
	}
	alive := 0
	for _, m := range rep.Masters {
		if m.State == string(protocol.MasterAlive) {
			alive++
		}
	}
	if alive > 1 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d masters report ALIVE", alive))
	}
	if leader == nil {
		if len(masters) > 0 { // with none to ask, the cause is already a problem
			rep.Problems = append(rep.Problems, "no master is ALIVE")
		}
		return
	}
	lr := &leaderReport{ID: leader.ID, URL: leader.URL, Epoch: leader.Epoch, Since: leader.LeaderSince,
		WebUI: leader.LeaderWebUI, REST: leader.LeaderREST}
	if lr.URL == "" {
		lr.URL = protocol.SparkURL(leaderAddr)
	}
	rep.Leader = lr
	var raw json.RawMessage
	if err := rpc.Call(ctx, http.MethodGet, leaderAddr, protocol.PathMasterStateJSON, nil, &raw); err != nil {
		rep.Problems = append(rep.Problems, "read the leader's state: "+shortErr(err))
		return
	}
	rep.State = raw
	sum, err := summarize(raw)
	if err != nil {
		rep.Problems = append(rep.Problems, "decode the leader's state: "+err.Error())
		return
	}
	rep.Cluster = sum
}

func shortErr(err error) string {
	if errors.Is(err, protocol.ErrConnRefused) {
		return "connection refused"
	}
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// summarize reads the Spark /json fields it needs, tolerating extra or
// differently typed ones.
func summarize(raw json.RawMessage) (*clusterSummary, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	s := &clusterSummary{
		AliveWorkers: num(doc["aliveworkers"]),
		Cores:        num(doc["cores"]), CoresUsed: num(doc["coresused"]),
		MemoryMB: num(doc["memory"]), MemoryUsedMB: num(doc["memoryused"]),
	}
	for _, w := range list(doc["workers"]) {
		s.WorkerList = append(s.WorkerList, workerSummary{ID: str(w["id"]), Host: str(w["host"]), State: str(w["state"]),
			Port: num(w["port"]), Cores: num(w["cores"]), CoresUsed: num(w["coresused"]),
			MemoryMB: num(w["memory"]), MemoryUsed: num(w["memoryused"])})
	}
	s.Workers = len(s.WorkerList)
	for _, a := range list(doc["activeapps"]) {
		s.ActiveApps = append(s.ActiveApps, appSummary{ID: str(a["id"]), Name: str(a["name"]), State: str(a["state"]), Cores: num(a["cores"])})
	}
	s.CompletedApps = len(list(doc["completedapps"]))
	for _, d := range list(doc["activedrivers"]) {
		s.ActiveDrivers = append(s.ActiveDrivers, driverSummary{ID: str(d["id"]), State: str(d["state"]), Worker: str(d["worker"]), Cores: num(d["cores"])})
	}
	s.CompletedDrivers = len(list(doc["completeddrivers"]))
	return s, nil
}

func num(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		var n int
		_, _ = fmt.Sscan(x, &n)
		return n
	}
	return 0
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []map[string]any {
	arr, _ := v.([]any)
	var out []map[string]any
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func printStatus(w io.Writer, rep statusReport) {
	if l := rep.Leader; l != nil {
		since := ""
		if t, err := time.Parse(time.RFC3339Nano, l.Since); err == nil {
			since = fmt.Sprintf(", since %s (%s ago)", t.UTC().Format(time.RFC3339), time.Since(t).Round(time.Second))
		}
		fmt.Fprintf(w, "Leader:  %s  ALIVE  epoch %d%s\n", l.URL, l.Epoch, since)
	} else {
		fmt.Fprintf(w, "Leader:  none (no master is ALIVE)\n")
	}
	if rep.ZKEpoch != nil {
		fmt.Fprintf(w, "ZooKeeper epoch: %d (leader %s)\n", rep.ZKEpoch.Epoch, rep.ZKEpoch.Leader)
	}
	fmt.Fprintf(w, "Masters:\n")
	for _, m := range rep.Masters {
		line := fmt.Sprintf("  %-28s %-20s", m.URL, m.State)
		if m.Epoch > 0 {
			line += fmt.Sprintf(" epoch %d", m.Epoch)
		}
		if m.Error != "" {
			line += "  " + m.Error
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if c := rep.Cluster; c != nil {
		fmt.Fprintf(w, "Workers: %d alive of %d; cores %d used of %d; memory %d MB used of %d MB\n",
			c.AliveWorkers, c.Workers, c.CoresUsed, c.Cores, c.MemoryUsedMB, c.MemoryMB)
		for _, wk := range c.WorkerList {
			fmt.Fprintf(w, "  %-40s %s:%d  %-6s cores %d/%d  memory %d/%d MB\n", wk.ID, wk.Host, wk.Port, wk.State,
				wk.CoresUsed, wk.Cores, wk.MemoryUsed, wk.MemoryMB)
		}
		fmt.Fprintf(w, "Applications: %d running, %d completed\n", len(c.ActiveApps), c.CompletedApps)
		for _, a := range c.ActiveApps {
			fmt.Fprintf(w, "  %-28s %-20s %-8s cores %d\n", a.ID, a.Name, a.State, a.Cores)
		}
		fmt.Fprintf(w, "Drivers: %d active, %d completed\n", len(c.ActiveDrivers), c.CompletedDrivers)
		for _, d := range c.ActiveDrivers {
			fmt.Fprintf(w, "  %-28s %-10s worker %s\n", d.ID, d.State, d.Worker)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "Problem: %s\n", p)
	}
}

// quietEntry is a logger for CLI internals: warnings and errors only, to stderr.
func quietEntry() *logrus.Entry {
	l := logrus.New()
	l.Out = os.Stderr
	l.SetLevel(logrus.ErrorLevel)
	return logrus.NewEntry(l)
}
