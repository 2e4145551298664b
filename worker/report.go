package worker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sparkd/sparkd/protocol"
)

// report is one state change waiting for a master's acknowledgement.
type report struct {
	path string // master path template ({id} = worker id)
	body any
	desc string // for logs
}

// Report retry backoff: doubling from reportRetryMin up to reportRetryMax; a
// master change retries at once.
const (
	reportRetryMin = 200 * time.Millisecond
	reportRetryMax = 5 * time.Second
)

func (w *Worker) queueExecutorStateLocked(e *executor) {
	w.reports = append(w.reports, report{
		path: protocol.PathExecutorState,
		body: protocol.ExecutorStateChanged{WorkerID: w.id, AppID: e.appID, ExecutorID: e.execID, State: e.state,
			Message: e.message, ExitCode: e.exitCode},
		desc: "executor " + execKey(e.appID, e.execID) + " " + string(e.state),
	})
	signal(w.reportWake)
}

func (w *Worker) queueDriverStateLocked(d *driver) {
	exception := d.message
	if d.state == protocol.DriverKilled {
		// Killed on request: no exception, as Spark's DriverRunner reports
		// it (the signal that ended it is in the worker's log and UI).
		exception = ""
	}
	w.reports = append(w.reports, report{
		path: protocol.PathDriverState,
		body: protocol.DriverStateChanged{WorkerID: w.id, DriverID: d.id, State: d.state, Exception: exception},
		desc: "driver " + d.id + " " + string(d.state),
	})
	signal(w.reportWake)
}

// pendingReports is how many state changes await acknowledgement.
func (w *Worker) pendingReports() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reports)
}

// reportLoop sends queued state changes, oldest first, to the current
// master; a change leaves the queue only once a master acknowledged it.
func (w *Worker) reportLoop(ctx context.Context) {
	delay := reportRetryMin
	for {
		w.mu.Lock()
		var head *report
		if len(w.reports) > 0 {
			r := w.reports[0]
			head = &r
		}
		w.mu.Unlock()
		addr, ok := w.currentMaster()
		if head == nil || !ok {
			select {
			case <-ctx.Done():
				return
			case <-w.reportWake:
				continue
			}
		}
		err := w.sendReport(ctx, addr, *head)
		if err == nil || permanent(err) {
			if err != nil {
				w.log.WithError(err).Errorf("Master refused state change %s; dropping it", head.desc)
			}
			w.popReport()
			delay = reportRetryMin
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.log.WithError(err).Warnf("Could not report %s; will retry", head.desc)
		t := w.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.reportWake:
			t.Stop()
		case <-t.C():
		}
		delay = min(2*delay, reportRetryMax)
	}
}

func (w *Worker) sendReport(ctx context.Context, addr string, r report) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	err := w.client.Call(ctx, http.MethodPost, addr, w.masterPath(r.path), r.body, nil)
	if err == nil {
		w.log.Debugf("Reported %s to %s", r.desc, normAddr(addr))
	}
	return err
}

func (w *Worker) popReport() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.reports) > 0 {
		w.reports = w.reports[1:]
	}
}

// permanent reports whether a master's answer means retrying cannot help:
// a 4xx other than 404 (not yet known, e.g. mid-recovery), 408, 409 and 429.
func permanent(err error) bool {
	var se *protocol.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case 404, 408, 409, 429:
		return false
	}
	return se.Code >= 400 && se.Code < 500
}

// flushReports tries each queued report once, in order, until one fails.
func (w *Worker) flushReports(ctx context.Context) {
	addr, ok := w.currentMaster()
	if !ok {
		if n := w.pendingReports(); n > 0 {
			w.log.Warnf("No master to report %d state changes to", n)
		}
		return
	}
	for {
		w.mu.Lock()
		if len(w.reports) == 0 {
			w.mu.Unlock()
			return
		}
		r := w.reports[0]
		w.mu.Unlock()
		err := w.sendReport(ctx, addr, r)
		if err != nil && !permanent(err) {
			w.log.WithError(err).Warnf("Could not report %s before shutting down", r.desc)
			return
		}
		w.popReport()
	}
}
