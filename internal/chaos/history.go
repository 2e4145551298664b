package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparkd/sparkd/internal/cluster"
	"github.com/sparkd/sparkd/protocol"
)

// Sample is one answer (or failure) of a master's /v1/leader. The master's
// state was what it reported at some instant between Sent and Recv.
type Sample struct {
	Master     int
	Sent, Recv time.Time
	OK         bool
	State      protocol.MasterState
	Epoch      int64
	Err        string
}

func (s Sample) String() string {
	if !s.OK {
		return fmt.Sprintf("%s master-%d unreachable (%s) [sent %s, %s]", clock(s.Sent), s.Master, s.Err, clock(s.Sent), s.Recv.Sub(s.Sent).Round(time.Millisecond))
	}
	return fmt.Sprintf("%s master-%d %s epoch %d [sent %s, answered %s]", clock(s.Recv), s.Master, s.State, s.Epoch, clock(s.Sent), clock(s.Recv))
}

// Event is something the harness did or saw (a fault, a heal, convergence,
// an application's start or end).
type Event struct {
	At   time.Time
	Text string
}

// Snapshot is a summary of the /json of a master that reported ALIVE: its
// workers and applications.
type Snapshot struct {
	At      time.Time
	Master  int
	Epoch   int64
	Status  string
	Workers string // "port=STATE ..." sorted
	Apps    map[string]string
}

// WorkerSnapshot is a worker's own /json: the master it follows, the
// highest epoch it has seen and the executors it runs (app/exec ids).
type WorkerSnapshot struct {
	At        time.Time
	Worker    int
	ID        string
	MasterURL string
	Epoch     int64
	Executors []string
}

func (w WorkerSnapshot) key() string {
	return fmt.Sprintf("%s|%s|%d|%v", w.ID, w.MasterURL, w.Epoch, w.Executors)
}

// History is everything recorded during a run.
type History struct {
	mu        sync.Mutex
	start     time.Time
	samples   []Sample
	events    []Event
	snapshots []Snapshot
	workers   []WorkerSnapshot
	lastW     map[int]string
	last      []Sample // latest sample per master
}

func newHistory(masters int) *History {
	return &History{start: time.Now(), last: make([]Sample, masters), lastW: map[int]string{}}
}

// Eventf records an event now.
func (h *History) Eventf(format string, a ...any) Event {
	e := Event{At: time.Now(), Text: fmt.Sprintf(format, a...)}
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
	return e
}

func (h *History) addSample(s Sample) {
	h.mu.Lock()
	h.samples = append(h.samples, s)
	h.last[s.Master] = s
	h.mu.Unlock()
}

func (h *History) addSnapshot(s Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.snapshots); n > 0 {
		p := h.snapshots[n-1]
		if p.Master == s.Master && p.Epoch == s.Epoch && p.Status == s.Status && p.Workers == s.Workers && sameApps(p.Apps, s.Apps) {
			return // unchanged: keep the history short
		}
	}
	h.snapshots = append(h.snapshots, s)
}

func sameApps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (h *History) addWorker(w WorkerSnapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastW[w.Worker] == w.key() {
		return
	}
	h.lastW[w.Worker] = w.key()
	h.workers = append(h.workers, w)
}

// Workers returns a copy of every worker snapshot.
func (h *History) Workers() []WorkerSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]WorkerSnapshot(nil), h.workers...)
}

// Samples returns a copy of every sample.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Sample(nil), h.samples...)
}

// Events returns a copy of every event.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// Snapshots returns a copy of every snapshot.
func (h *History) Snapshots() []Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Snapshot(nil), h.snapshots...)
}

// Around returns the history lines between from and to: every event, every
// change of a master's reported state (the first sample of each run of
// equal answers, and the last one before a change), and the workers and
// applications the leader reported.
//
// With a focus (an application id), only the /json snapshots in which that
// application's state changed are shown, with that application only.
func (h *History) Around(from, to time.Time, focus string) []string {
	type line struct {
		at   time.Time
		text string
	}
	var ls []line
	for _, e := range h.Events() {
		if !e.At.Before(from) && !e.At.After(to) {
			ls = append(ls, line{e.At, fmt.Sprintf("%s   harness: %s", clock(e.At), e.Text)})
		}
	}
	samples := h.Samples()
	byMaster := map[int][]Sample{}
	for _, s := range samples {
		byMaster[s.Master] = append(byMaster[s.Master], s)
	}
	key := func(s Sample) string { return fmt.Sprintf("%v/%s/%d", s.OK, s.State, s.Epoch) }
	for _, ss := range byMaster {
		for i, s := range ss {
			at := s.Recv
			if at.Before(from) || at.After(to) {
				continue
			}
			first := i == 0 || key(ss[i-1]) != key(s)
			lastOfRun := i == len(ss)-1 || key(ss[i+1]) != key(s)
			if first || lastOfRun {
				ls = append(ls, line{at, "  " + s.String()})
			}
		}
	}
	prev := "\x00"
	for _, s := range h.Snapshots() {
		apps := s.Apps
		if focus != "" {
			st, ok := s.Apps[focus]
			if !ok {
				st = "(not active)"
			}
			if st == prev {
				continue
			}
			prev = st
			apps = map[string]string{focus: st}
		}
		if !s.At.Before(from) && !s.At.After(to) {
			ls = append(ls, line{s.At, fmt.Sprintf("%s   /json of master-%d (%s, epoch %d): workers %s; apps %s", clock(s.At), s.Master, s.Status, s.Epoch, s.Workers, appsString(apps))})
		}
	}
	prevW := map[int]WorkerSnapshot{}
	for _, w := range h.Workers() {
		p, seen := prevW[w.Worker]
		prevW[w.Worker] = w
		if w.At.Before(from) || w.At.After(to) {
			continue
		}
		execs := w.Executors
		if focus != "" {
			// Only the focused application's executors, and only when they change.
			execs = nil
			for _, e := range w.Executors {
				if strings.HasPrefix(e, focus+"/") {
					execs = append(execs, e)
				}
			}
			var before []string
			for _, e := range p.Executors {
				if strings.HasPrefix(e, focus+"/") {
					before = append(before, e)
				}
			}
			if seen && fmt.Sprint(before) == fmt.Sprint(execs) && p.ID == w.ID {
				continue
			}
		} else if seen && p.MasterURL == w.MasterURL && p.Epoch == w.Epoch && p.ID == w.ID {
			continue // executors come and go all the time: show master changes only
		}
		ls = append(ls, line{w.At, fmt.Sprintf("%s   worker-%d (%s) follows %s at epoch %d, runs %v", clock(w.At), w.Worker, w.ID, w.MasterURL, w.Epoch, execs)})
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.text
	}
	return out
}

func appsString(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// poller polls every master's /v1/leader every interval, and the /json of
// the masters that answer ALIVE every jsonEvery, until ctx ends.
type poller struct {
	c         *cluster.Cluster
	h         *History
	rpc       *protocol.Client
	interval  time.Duration
	jsonEvery time.Duration
	timeout   time.Duration
	wg        sync.WaitGroup
}

func (p *poller) start(ctx context.Context) {
	for i := range p.c.Masters {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pollMaster(ctx, i)
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pollJSON(ctx)
	}()
}

func (p *poller) wait() { p.wg.Wait() }

func (p *poller) pollMaster(ctx context.Context, i int) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		s := Sample{Master: i, Sent: time.Now()}
		cctx, cancel := context.WithTimeout(ctx, p.timeout)
		var li protocol.LeaderInfo
		err := p.rpc.Call(cctx, http.MethodGet, p.c.Masters[i].Addr(), protocol.PathLeader, nil, &li)
		cancel()
		s.Recv = time.Now()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.Err = shortErr(err)
		} else {
			s.OK, s.State, s.Epoch = true, li.State, li.Epoch
		}
		p.h.addSample(s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *poller) pollJSON(ctx context.Context) {
	t := time.NewTicker(p.jsonEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.h.mu.Lock()
		last := append([]Sample(nil), p.h.last...)
		p.h.mu.Unlock()
		for i, w := range p.c.Workers {
			if !w.Running() {
				continue
			}
			if ws, err := workerJSONOf(ctx, p.rpc, w, p.timeout); err == nil {
				var execs []string
				for _, e := range ws.Executors {
					execs = append(execs, fmt.Sprintf("%s/%d", e.AppID, e.ID))
				}
				sort.Strings(execs)
				p.h.addWorker(WorkerSnapshot{At: time.Now(), Worker: i, ID: ws.ID, MasterURL: ws.MasterURL, Epoch: ws.Epoch, Executors: execs})
			}
		}
		for _, s := range last {
			if !s.OK || s.State != protocol.MasterAlive {
				continue
			}
			st, err := masterJSON(ctx, p.rpc, p.c, s.Master, p.timeout)
			if err != nil {
				continue
			}
			p.h.addSnapshot(snapshotOf(s.Master, st))
		}
	}
}

// jsonState is the part of a master's /json the harness reads.
type jsonState struct {
	Status    string                `json:"status"`
	Epoch     int64                 `json:"epoch"`
	Workers   []cluster.WorkerState `json:"workers"`
	Active    []jsonApp             `json:"activeapps"`
	Completed []jsonApp             `json:"completedapps"`
}

type jsonApp struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	State         string `json:"state"`
	Cores         int    `json:"cores"`
	Executors     int    `json:"executors"`
	WaitingReason string `json:"waitingreason"`
}

func masterJSON(ctx context.Context, rpc *protocol.Client, c *cluster.Cluster, i int, timeout time.Duration) (jsonState, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var st jsonState
	err := rpc.Call(cctx, http.MethodGet, c.Masters[i].Addr(), protocol.PathMasterStateJSON, nil, &st)
	return st, err
}

func snapshotOf(i int, st jsonState) Snapshot {
	var ws []string
	for _, w := range st.Workers {
		ws = append(ws, fmt.Sprintf("%d=%s", w.Port, w.State))
	}
	sort.Strings(ws)
	apps := map[string]string{}
	for _, a := range st.Active {
		apps[a.ID] = fmt.Sprintf("%s/%dexec", a.State, a.Executors)
	}
	return Snapshot{At: time.Now(), Master: i, Epoch: st.Epoch, Status: st.Status, Workers: strings.Join(ws, " "), Apps: apps}
}

func shortErr(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "deadline exceeded"), strings.Contains(s, "Timeout"), strings.Contains(s, "timeout"):
		return "timeout"
	}
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// workerState is the part of a worker's /json (its web UI) the harness reads.
type workerState struct {
	ID        string `json:"id"`
	MasterURL string `json:"masterurl"`
	Epoch     int64  `json:"epoch"`
	State     string `json:"state"`
	CoresUsed int    `json:"coresused"`
	Executors []struct {
		ID    int    `json:"id"`
		AppID string `json:"appid"`
	} `json:"executors"`
}

func workerJSONOf(ctx context.Context, rpc *protocol.Client, w *cluster.Proc, timeout time.Duration) (workerState, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ws workerState
	err := rpc.Call(cctx, http.MethodGet, net.JoinHostPort("127.0.0.1", strconv.Itoa(w.UIPort)), "/json", nil, &ws)
	return ws, err
}
