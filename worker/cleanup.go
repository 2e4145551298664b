package worker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrDecommissionDisabled is returned by Decommission when
// spark.decommission.enabled is false.
var ErrDecommissionDisabled = errors.New("worker: decommission is disabled (spark.decommission.enabled=false)")

// Decommission marks the worker decommissioned: it refuses new executors and
// drivers (HTTP 503), tells the master (again after every re-registration),
// and lets running work finish. Once no executor or driver is left, Run
// stops the worker as a cancelled context does and returns nil (Spark's
// decommissioned worker exits too). It is idempotent.
func (w *Worker) Decommission(ctx context.Context) error {
	if !w.cfg.DecommissionEnabled {
		w.log.Warn("Received decommission request, but decommission is disabled (spark.decommission.enabled=false)")
		return ErrDecommissionDisabled
	}
	w.mu.Lock()
	already := w.decommissioned
	w.decommissioned = true
	w.mu.Unlock()
	if already {
		w.log.Warnf("Worker %s already started decommissioning.", w.id)
		return nil
	}
	w.log.Info("Decommissioning this worker: refusing new executors and drivers, letting running ones finish")
	if addr, ok := w.currentMaster(); ok {
		ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
		defer cancel()
		w.sendDecommissioning(ctx, addr)
	}
	w.mu.Lock()
	w.checkDrainedLocked()
	w.mu.Unlock()
	return nil
}

// checkDrainedLocked closes drained when a decommissioned worker has no
// executor or driver left. Nothing can start afterwards: a decommissioned
// worker refuses launches.
func (w *Worker) checkDrainedLocked() {
	if w.decommissioned && !w.stopping && len(w.executors) == 0 && len(w.drivers) == 0 {
		w.drainOnce.Do(func() { close(w.drained) })
	}
}

// Decommissioned reports whether Decommission was called.
func (w *Worker) Decommissioned() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.decommissioned
}

// cleanupLoop runs cleanupWorkDir every CleanupInterval.
func (w *Worker) cleanupLoop(ctx context.Context) {
	for {
		t := w.clock.NewTimer(w.cfg.CleanupInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
			w.cleanupWorkDir()
		}
	}
}

// cleanupWorkDir deletes the directories of applications and drivers that do
// not run on this worker any more and hold no file modified within
// AppDataTTL. Only "app-*" and "driver-*" directories are considered, so an
// operator's other files in the work dir are never touched.
func (w *Worker) cleanupWorkDir() {
	entries, err := os.ReadDir(w.cfg.WorkDir)
	if err != nil {
		w.log.WithError(err).Warn("Work-dir cleanup: cannot list the work dir")
		return
	}
	w.mu.Lock()
	active := map[string]bool{}
	for _, e := range w.executors {
		active[e.appID] = true
	}
	for id := range w.drivers {
		active[id] = true
	}
	w.mu.Unlock()
	cutoff := w.clock.Now().Add(-w.cfg.AppDataTTL)
	for _, ent := range entries {
		name := ent.Name()
		if ent.IsDir() && strings.HasPrefix(name, ".removing-") {
			// Left by a cleanup interrupted mid-way (the worker stopped).
			if err := os.RemoveAll(filepath.Join(w.cfg.WorkDir, name)); err != nil {
				w.log.WithError(err).Warnf("Work-dir cleanup: could not remove %s", name)
			}
			continue
		}
		if !ent.IsDir() || active[name] || !(strings.HasPrefix(name, "app-") || strings.HasPrefix(name, "driver-")) {
			continue
		}
		dir := filepath.Join(w.cfg.WorkDir, name)
		if newerThan(dir, cutoff) {
			continue
		}
		// Re-check under the lock: an executor of this app may have started.
		// The directory is only renamed under the lock (one rename, however
		// large it is); the slow RemoveAll runs without it, so heartbeats and
		// MasterChanged answers never wait for the disk.
		w.mu.Lock()
		running := false
		for _, e := range w.executors {
			running = running || e.appID == name
		}
		_, drv := w.drivers[name]
		var trash string
		if !running && !drv {
			trash = filepath.Join(w.cfg.WorkDir, ".removing-"+name)
			err = os.Rename(dir, trash)
			delete(w.finishedApps, name)
			delete(w.finishedDirs, name)
		}
		w.mu.Unlock()
		if running || drv {
			continue
		}
		if err == nil {
			err = removeAll(trash)
		}
		if err != nil {
			w.log.WithError(err).Warnf("Work-dir cleanup: could not remove %s", dir)
			continue
		}
		w.log.Infof("Removed work dir %s of finished %s", dir, name)
	}
}

// newerThan reports whether any file under dir was modified after cutoff.
func newerThan(dir string, cutoff time.Time) bool {
	found := false
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, ierr := d.Info(); ierr == nil && info.ModTime().After(cutoff) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// removeAll is os.RemoveAll; tests slow it down.
var removeAll = os.RemoveAll
