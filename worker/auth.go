package worker

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/sparkd/sparkd/protocol"
)

// Secrets and children (issue #16). With authentication on, the worker's
// command listener admits only requests signed with the master key; its
// executors and drivers get their application's credential (a key derived
// for the application's principal), never the cluster secret: it is
// removed from their environment and from -D options in it.

// secretEnvVars are removed from every child's environment.
var secretEnvVars = map[string]bool{
	"SPARK_AUTHENTICATE_SECRET": true, // sparkd's (client.EnvAuthSecret)
	"_SPARK_AUTH_SECRET":        true, // Spark's
}

// secretOption is the -D option that carries the secret.
const secretOption = "-Dspark.authenticate.secret="

// stripSecretOptions removes every -Dspark.authenticate.secret=... word
// from a list of options (SPARK_DAEMON_JAVA_OPTS and the like).
func stripSecretOptions(v string) string {
	if !strings.Contains(v, secretOption) {
		return v
	}
	words := strings.Fields(v)
	out := words[:0]
	for _, w := range words {
		if !strings.HasPrefix(strings.Trim(w, `"'`), secretOption) {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// childEnviron is the worker's environment without the cluster secret.
func childEnviron() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if secretEnvVars[k] {
			continue
		}
		out = append(out, k+"="+stripSecretOptions(v))
	}
	return out
}

// scrubChild removes the secret from a child's argv and environment, and
// gives it cred (an application credential; "" for none) instead.
func scrubChild(argv, env []string, cred string) ([]string, []string) {
	outArgv := argv[:0:0]
	for _, a := range argv {
		if strings.HasPrefix(a, secretOption) {
			continue
		}
		outArgv = append(outArgv, a)
	}
	outEnv := env[:0:0]
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if secretEnvVars[k] {
			continue
		}
		outEnv = append(outEnv, k+"="+stripSecretOptions(v))
	}
	if cred != "" {
		outEnv = append(outEnv, "SPARK_AUTHENTICATE_SECRET="+cred)
	}
	return outArgv, outEnv
}

// appCredential is the credential a child of principal gets ("" when
// authentication is off or there is no principal).
func (w *Worker) appCredential(principal string) string {
	if w.creds == nil || principal == "" {
		return ""
	}
	return w.creds.AppCredential(principal)
}

// knownMaster reports whether url names a configured master or the one the
// worker follows.
func (w *Worker) knownMaster(url string) bool {
	a := normAddr(url)
	for _, m := range w.cfg.Masters {
		if normAddr(m) == a {
			return true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.masterURL != "" && normAddr(w.masterURL) == a
}

// confirmEpoch checks a higher epoch from a master the worker does not know
// against its configured masters: one of them must name s.MasterURL as the
// leader at s.Epoch (or later). Only with authentication on; a refusal is
// a 403 and changes nothing.
func (w *Worker) confirmEpoch(ctx context.Context, what string, s protocol.Stamp) error {
	if w.creds == nil {
		return nil
	}
	if cur, _ := w.guard.Current(); s.Epoch <= cur || w.knownMaster(s.MasterURL) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	type answer struct {
		li  protocol.LeaderInfo
		err error
	}
	ch := make(chan answer, len(w.cfg.Masters))
	for _, m := range w.cfg.Masters {
		go func() {
			var a answer
			a.err = w.client.Call(ctx, http.MethodGet, m, protocol.PathLeader, nil, &a.li)
			ch <- a
		}()
	}
	for range w.cfg.Masters {
		a := <-ch
		if a.err == nil && a.li.LeaderURL != "" && normAddr(a.li.LeaderURL) == normAddr(s.MasterURL) && a.li.Epoch >= s.Epoch {
			return nil
		}
	}
	w.log.Warnf("Refusing %s from unknown master %s at epoch %d: no configured master confirms it leads", what, s.MasterURL, s.Epoch)
	return &protocol.StatusError{Code: http.StatusForbidden,
		Message: fmt.Sprintf("no configured master confirms that %s leads at epoch %d", s.MasterURL, s.Epoch)}
}
