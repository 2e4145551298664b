package worker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// maxHintHops bounds how many leader hints one registration follows in a row.
const maxHintHops = 3

// connLoop alternates between registering and heartbeating until ctx ends
// or registration gives up. It is the only goroutine that owns the
// registration and heartbeat timers, so they never stack.
func (w *Worker) connLoop(ctx context.Context) error {
	for {
		if err := w.register(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		w.heartbeatLoop(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// backoffInterval is the wait after the attempt-th failed registration round
// (1-based): the initial interval for the first InitialRegistrationRetries
// rounds, then the max interval, each scaled by a jitter factor in [0.5, 1.5)
// (fuzz in [0, 1)), as Spark does.
func backoffInterval(cfg Config, attempt int, fuzz float64) time.Duration {
	base := cfg.RegistrationMaxInterval
	if attempt <= cfg.InitialRegistrationRetries {
		base = cfg.RegistrationInitialInterval
	}
	return time.Duration(float64(base) * (0.5 + fuzz))
}

// register tries every master concurrently, round after round with backoff,
// until one accepts the worker, a MasterChanged attaches it to a leader, ctx
// ends (nil), or MaxRegistrationRetries rounds failed (ErrGaveUp). Whoever
// detaches the worker (a failed heartbeat, ReconnectWorker) clears
// registered first, so a MasterChanged that raced ahead is never undone.
func (w *Worker) register(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		if w.isRegistered() {
			return nil // a MasterChanged attached us meanwhile
		}
		if attempt > 1 {
			w.log.Infof("Retrying connection to master (attempt # %d)", attempt)
		}
		if w.tryRegisterAll(ctx) || w.isRegistered() {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt >= w.cfg.MaxRegistrationRetries {
			w.log.Error("All masters are unresponsive! Giving up.")
			return ErrGaveUp
		}
		t := w.clock.NewTimer(backoffInterval(w.cfg, attempt, w.jit()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.masterChangedCh:
			t.Stop()
			if w.isRegistered() {
				return nil
			}
		case <-w.reconnectCh:
			t.Stop() // a master asked for us: retry at once
		case <-t.C():
		}
	}
}

func (w *Worker) isRegistered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.registered
}

type regResult struct {
	addr string // the address that accepted
	resp protocol.RegisteredWorker
}

// registrationTargets are the configured masters plus the last master
// followed, if it is not one of them (a leader named by MasterChanged).
func (w *Worker) registrationTargets() []string {
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		k := normAddr(a)
		if a == "" || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, a)
	}
	w.mu.Lock()
	last := w.masterAddr
	w.mu.Unlock()
	for _, m := range w.cfg.Masters {
		add(m)
	}
	add(last)
	return out
}

func normAddr(a string) string {
	return strings.TrimRight(strings.TrimPrefix(protocol.HTTPBase(a), "http://"), "/")
}

// tryRegisterAll sends RegisterWorker to every target at once, follows leader
// hints, and adopts the first acceptance whose epoch is not stale. The other
// requests are cancelled and joined before it returns.
func (w *Worker) tryRegisterAll(ctx context.Context) bool {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	targets := w.registrationTargets()
	direct := map[string]bool{}
	for _, t := range targets {
		direct[normAddr(t)] = true
	}
	results := make(chan regResult, len(targets))
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			if r, ok := w.registerWith(rctx, t, direct); ok {
				results <- r
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	won := false
	for r := range results {
		if won {
			continue
		}
		if w.adoptRegistration(r) {
			won = true
			cancel()
		}
	}
	if won {
		w.afterRegistration(ctx)
	}
	return won
}

// registerWith registers at addr, following up to maxHintHops leader hints.
// A hint naming a master that this round already asks directly is not
// followed: that attempt registers the worker, and a second one would only
// meet it at the leader ("in progress") and cost the leader a round trip.
func (w *Worker) registerWith(ctx context.Context, addr string, direct map[string]bool) (regResult, bool) {
	for hop := 0; ; hop++ {
		w.log.Infof("Connecting to master %s...", normAddr(addr))
		msg := protocol.RegisterWorker{
			ID: w.id, Host: w.host, Port: w.port, URL: w.url, WebUIURL: w.webUIURL,
			Cores: w.cfg.Cores, MemoryMB: w.cfg.MemoryMB, MasterHint: addr,
		}
		var resp protocol.RegisteredWorker
		err := w.regClient.Call(ctx, http.MethodPost, addr, protocol.PathRegisterWorker, msg, &resp)
		if err == nil {
			return regResult{addr: addr, resp: resp}, true
		}
		if ctx.Err() != nil {
			return regResult{}, false
		}
		var se *protocol.StatusError
		if errors.As(err, &se) && se.Hint != nil {
			if se.Hint.LeaderURL != "" && direct[normAddr(se.Hint.LeaderURL)] && normAddr(se.Hint.LeaderURL) != normAddr(addr) {
				w.log.Debugf("Master %s is %s; the leader %s is asked directly in this round", normAddr(addr), se.Hint.State,
					normAddr(se.Hint.LeaderURL))
				return regResult{}, false
			}
			if se.Hint.LeaderURL != "" && normAddr(se.Hint.LeaderURL) != normAddr(addr) && hop < maxHintHops {
				w.log.Infof("Master %s is %s; going to the leader %s (epoch %d)", normAddr(addr), se.Hint.State,
					normAddr(se.Hint.LeaderURL), se.Hint.Epoch)
				addr = se.Hint.LeaderURL
				continue
			}
			w.log.Debugf("Master %s is %s and knows no leader yet", normAddr(addr), se.Hint.State)
			return regResult{}, false
		}
		if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
			// The master is busy with another of this round's attempts
			// (the direct one and the one that followed a standby's hint
			// meet at the leader); not a connection failure.
			w.log.Debugf("Master %s: %s", normAddr(addr), se.Message)
			return regResult{}, false
		}
		w.log.WithError(err).Warnf("Failed to connect to master %s", normAddr(addr))
		return regResult{}, false
	}
}

// adoptRegistration records an acceptance unless its epoch is stale.
func (w *Worker) adoptRegistration(r regResult) bool {
	if _, err := w.guard.Admit(r.resp.Stamp); err != nil {
		w.log.WithError(err).Warnf("Ignoring registration from master %s with a stale epoch", normAddr(r.addr))
		return false
	}
	masterURL := r.resp.MasterURL
	if masterURL == "" {
		masterURL = protocol.SparkURL(normAddr(r.addr))
	}
	w.mu.Lock()
	w.registered = true
	w.masterAddr = r.addr
	w.masterURL = masterURL
	w.masterWebUI = r.resp.MasterWebUIURL
	w.mu.Unlock()
	if r.resp.Duplicate {
		w.log.Warnf("Duplicate registration at master %s (epoch %d); continuing", masterURL, r.resp.Epoch)
	}
	w.log.Infof("Successfully registered with master %s (epoch %d)", masterURL, r.resp.Epoch)
	signal(w.reportWake)
	return true
}

// afterRegistration sends WorkerLatestState (SPARK-13604) and, when the
// worker is decommissioned, repeats WorkerDecommissioning.
func (w *Worker) afterRegistration(ctx context.Context) {
	addr, ok := w.currentMaster()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	st := w.schedulerState()
	if err := w.client.Call(ctx, http.MethodPost, addr, w.masterPath(protocol.PathWorkerLatestState), st, nil); err != nil {
		w.log.WithError(err).Warn("Could not send WorkerLatestState to the master")
	}
	w.mu.Lock()
	decom := w.decommissioned
	w.mu.Unlock()
	if decom {
		w.sendDecommissioning(ctx, addr)
	}
}

// heartbeatLoop heartbeats to the current master every Timeout/4 until the
// master is lost or asks for re-registration, or ctx ends.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := w.clock.NewTimer(w.heartbeatInterval())
	defer func() { t.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.reconnectCh:
			w.log.Info("Master asked this worker to reconnect; registering again")
			return
		case <-w.masterChangedCh:
			// Already switched by the handler; keep the one timer.
		case <-t.C():
			addr, ok := w.currentMaster()
			if !ok {
				return
			}
			// A heartbeat to a master that hangs (paused, partitioned) must
			// not hold the worker for the request timeout once a new leader
			// has attached it: MasterChanged cancels it, and the worker
			// heartbeats the new leader on its next tick.
			hctx, hcancel := context.WithCancel(ctx)
			res := make(chan bool, 1)
			go func() { res <- w.heartbeat(hctx, addr) }()
			var alive bool
			select {
			case alive = <-res:
			case <-w.masterChangedCh:
				hcancel()
				<-res
				alive = true
				w.log.Debugf("Heartbeat to %s dropped: the master changed", normAddr(addr))
			}
			hcancel()
			if alive {
				t = w.clock.NewTimer(w.heartbeatInterval())
				continue
			}
			return
		}
	}
}

// heartbeatInterval is Timeout/4 scaled by a jitter factor in [0.9, 1.3):
// a fleet started together must not stay in step and hit the master (or a
// new leader) all at once. Even the longest interval leaves more than three
// heartbeats per timeout.
func (w *Worker) heartbeatInterval() time.Duration {
	d := w.cfg.Timeout / 4
	return d*9/10 + time.Duration(float64(d/10)*4*w.jit())
}

// heartbeat sends one heartbeat; false means "register again".
func (w *Worker) heartbeat(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	var resp protocol.HeartbeatResponse
	err := w.client.Call(ctx, http.MethodPost, addr, w.masterPath(protocol.PathWorkerHeartbeat),
		protocol.Heartbeat{WorkerID: w.id, Epoch: w.Epoch(), Running: w.running()}, &resp)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return false
		}
		w.log.WithError(err).Warn("Connection to master failed! Waiting for master to reconnect...")
		w.lostMaster(addr)
		return false
	}
	if resp.Epoch > 0 {
		if _, err := w.guard.Admit(resp.Stamp); err != nil {
			w.log.WithError(err).Warnf("Master %s has a stale epoch; registering again", normAddr(addr))
			w.lostMaster(addr)
			return false
		}
	}
	if resp.Reregister {
		w.log.Infof("Master %s does not know this worker; registering again", normAddr(addr))
		w.lostMaster(addr)
		return false
	}
	w.log.Debugf("Heartbeat to %s acknowledged", normAddr(addr))
	return true
}

// lostMaster marks the worker unregistered if addr is still its master.
func (w *Worker) lostMaster(addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.masterAddr == addr {
		w.registered = false
	}
}

// changeMaster attaches the worker to the master named by a MasterChanged.
func (w *Worker) changeMaster(s protocol.Stamp, webUI string) {
	w.mu.Lock()
	changed := w.masterURL != s.MasterURL
	w.registered = true
	w.masterAddr = s.MasterURL
	w.masterURL = s.MasterURL
	if webUI != "" {
		w.masterWebUI = webUI
	}
	w.mu.Unlock()
	if changed {
		w.log.Infof("Master has changed, new master is at %s (epoch %d)", s.MasterURL, s.Epoch)
	}
	signal(w.masterChangedCh)
	signal(w.reportWake)
}

func (w *Worker) sendDecommissioning(ctx context.Context, addr string) {
	err := w.client.Call(ctx, http.MethodPost, addr, w.masterPath(protocol.PathWorkerDecommission),
		protocol.WorkerDecommissioning{WorkerID: w.id}, nil)
	if err != nil {
		w.log.WithError(err).Warn("Could not tell the master this worker is decommissioned")
		return
	}
	w.log.Infof("Told master %s this worker is decommissioned", normAddr(addr))
}
