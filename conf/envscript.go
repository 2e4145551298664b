package conf

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// envScriptTimeout bounds how long spark-env.sh may run.
const envScriptTimeout = 30 * time.Second

const envMarker = "__SPARKD_ENV_STATUS__="

// sourceEnvScript sources script with bash the way Spark's
// bin/load-spark-env.sh does (set -a; . script) in environment env, and
// returns the resulting environment, with SPARK_ENV_LOADED=1.
//
// Errors (ErrEnvScript, naming the file): bash is missing; the script has a
// syntax error (checked first with bash -n); the script ends the shell
// (exit N, set -e) instead of returning; it runs longer than 30 s. A non-zero
// status of the script's last command is only a warning, because Spark
// ignores it too and idioms like `[ -n "$X" ] && export Y=1` produce it.
// What the script writes to stdout or stderr is logged as warnings.
func sourceEnvScript(script string, env map[string]string, log *logrus.Entry) (map[string]string, error) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		return nil, fmt.Errorf("%w: %s: bash is needed to source it: %w", ErrEnvScript, script, err)
	}
	environ := make([]string, 0, len(env)+1)
	for k, v := range env {
		if k == "BASH_ENV" || k == "ENV" { // would run another file first
			continue
		}
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, "SPARK_ENV_LOADED=1")

	var stderr bytes.Buffer
	check := exec.Command(bash, "-n", script)
	check.Env = environ
	check.Stderr = &stderr
	if err := runBounded(check); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrEnvScript, script, firstLine(stderr.String(), err))
	}

	stderr.Reset()
	var stdout bytes.Buffer
	src := exec.Command(bash, "-c", `set -a; . "$1" >&2; printf '%s\0' "`+envMarker+`$?"; env -0`, "sparkd-load-env", script)
	src.Env = environ
	src.Stdout = &stdout
	src.Stderr = &stderr
	runErr := runBounded(src)
	out := stdout.Bytes()
	i := bytes.Index(out, []byte(envMarker))
	if i < 0 || (i > 0 && out[i-1] != 0) {
		why := "exited while being sourced"
		if runErr != nil {
			why += " (" + runErr.Error() + ")"
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			why += ": " + firstLine(msg, nil)
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrEnvScript, script, why)
	}
	if runErr != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrEnvScript, script, runErr)
	}
	logOutput(log, script, stderr.String())
	rest := out[i+len(envMarker):]
	statusEnd := bytes.IndexByte(rest, 0)
	if statusEnd < 0 {
		return nil, fmt.Errorf("%w: %s: truncated environment", ErrEnvScript, script)
	}
	if st, _ := strconv.Atoi(string(rest[:statusEnd])); st != 0 {
		log.WithField("file", script).Warnf("spark-env.sh: last command returned status %d (ignored, as Spark does)", st)
	}
	result := map[string]string{}
	for _, kv := range bytes.Split(rest[statusEnd+1:], []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok || k == "" {
			continue
		}
		result[k] = v
	}
	log.WithField("file", script).Debug("sourced spark-env.sh")
	return result, nil
}

// runBounded runs cmd, killing it after envScriptTimeout.
func runBounded(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	timedOut := make(chan struct{})
	t := time.AfterFunc(envScriptTimeout, func() {
		close(timedOut)
		_ = cmd.Process.Kill()
	})
	err := cmd.Wait()
	if !t.Stop() {
		<-timedOut
		return fmt.Errorf("still running after %v, killed", envScriptTimeout)
	}
	return err
}

func logOutput(log *logrus.Entry, script, out string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			log.WithField("file", script).Warn("spark-env.sh: " + line)
		}
	}
}

// firstLine returns the first non-empty line of msg, else err's text.
func firstLine(msg string, err error) string {
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	if err != nil {
		return err.Error()
	}
	return "failed"
}
