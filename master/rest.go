package master

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/protocol"
)

// Spark's REST submission protocol (deploy/rest): every message is a JSON
// object whose "action" names its class.

const (
	restProtocolVersion = "v1"
	// restServerSparkVersion is reported as serverSparkVersion.
	restServerSparkVersion = "4.0.0"
	// statusUnknownProtocolVersion is Spark's SC_UNKNOWN_PROTOCOL_VERSION.
	statusUnknownProtocolVersion = 468
	// defaultDriverMemoryMB and defaultDriverCores are Spark's defaults for a
	// cluster-mode driver (spark.driver.memory=1g, spark.driver.cores=1).
	defaultDriverMemoryMB = 1024
	defaultDriverCores    = 1
)

// createSubmissionRequest is Spark's CreateSubmissionRequest.
type createSubmissionRequest struct {
	Action               string            `json:"action"`
	ClientSparkVersion   string            `json:"clientSparkVersion"`
	AppResource          string            `json:"appResource"`
	MainClass            string            `json:"mainClass"`
	AppArgs              []string          `json:"appArgs"`
	SparkProperties      map[string]string `json:"sparkProperties"`
	EnvironmentVariables map[string]string `json:"environmentVariables"`
}

var createRequestFields = map[string]bool{
	"action": true, "clientSparkVersion": true, "appResource": true, "mainClass": true,
	"appArgs": true, "sparkProperties": true, "environmentVariables": true,
}

// restResponse carries the fields of every Spark REST response type; unset
// optional fields are omitted (Spark's Jackson uses NON_NULL). sparkd adds
// "leaderHint" to answers of a master that is not ALIVE.
type restResponse struct {
	Action                 string               `json:"action"`
	DriverState            string               `json:"driverState,omitempty"`
	HighestProtocolVersion string               `json:"highestProtocolVersion,omitempty"`
	LeaderHint             *protocol.LeaderHint `json:"leaderHint,omitempty"`
	Message                string               `json:"message,omitempty"`
	ServerSparkVersion     string               `json:"serverSparkVersion"`
	SubmissionID           string               `json:"submissionId,omitempty"`
	Success                *bool                `json:"success,omitempty"`
	UnknownFields          []string             `json:"unknownFields,omitempty"`
	WorkerHostPort         string               `json:"workerHostPort,omitempty"`
	WorkerID               string               `json:"workerId,omitempty"`
}

func ptrBool(b bool) *bool { return &b }

// restServer serves Spark's REST submission API.
type restServer struct {
	a      Actions
	log    *logrus.Entry
	getenv func(string) string
}

// NewRESTServer returns Spark's REST submission server handler:
// POST /v1/submissions/create, GET /v1/submissions/status/{id},
// POST /v1/submissions/kill/{id}, POST /v1/submissions/killall,
// POST /v1/submissions/clear and GET /v1/submissions/readyz. Answers are
// Spark's JSON messages and status codes: 400 for a malformed request (the
// message names the field), 468 for an unknown protocol version, 500 for an
// internal error. A master that is not ALIVE answers success:false with
// Spark's message and a "leaderHint".
func NewRESTServer(a Actions, opts UIOptions) http.Handler {
	return newRESTServer(a, opts, os.Getenv)
}

func newRESTServer(a Actions, opts UIOptions, getenv func(string) string) http.Handler {
	s := &restServer{a: a, log: opts.logger(), getenv: getenv}
	r := mux.NewRouter()
	p := "/" + restProtocolVersion + "/submissions"
	r.Handle(p+"/create", s.wrap(s.handleCreate)).Methods(http.MethodPost)
	r.Handle(p+"/create/", s.wrap(s.handleCreate)).Methods(http.MethodPost)
	r.Handle(p+"/status/{id}", s.wrap(s.handleStatus)).Methods(http.MethodGet)
	r.Handle(p+"/kill/{id}", s.wrap(s.handleKill)).Methods(http.MethodPost)
	r.Handle(p+"/killall", s.wrap(s.handleKillAll)).Methods(http.MethodPost)
	r.Handle(p+"/clear", s.wrap(s.handleClear)).Methods(http.MethodPost)
	r.Handle(p+"/readyz", s.wrap(s.handleReadyz)).Methods(http.MethodGet)
	r.Handle(p+"/status", s.wrap(missingID("status"))).Methods(http.MethodGet)
	r.Handle(p+"/status/", s.wrap(missingID("status"))).Methods(http.MethodGet)
	r.Handle(p+"/kill", s.wrap(missingID("kill"))).Methods(http.MethodPost)
	r.Handle(p+"/kill/", s.wrap(missingID("kill"))).Methods(http.MethodPost)
	// The leader probe of the spark:// listener, also here: Spark users
	// give spark-submit --deploy-mode cluster the REST port
	// (spark://m1:6066,m2:6066), and sparkd's clients find the leader with
	// this request whichever port they were given.
	r.Handle(protocol.PathLeader, http.HandlerFunc(s.handleLeader)).Methods(http.MethodGet)
	r.NotFoundHandler = s.wrap(s.handlePathError)
	r.MethodNotAllowedHandler = s.wrap(func(r *http.Request) (int, restResponse) {
		return http.StatusMethodNotAllowed, errorResponse(fmt.Sprintf("HTTP method %s is not supported by %s.", r.Method, r.URL.Path))
	})
	return protocol.RequireJWS(opts.JWS, r)
}

// handleLeader answers protocol.PathLeader as the RPC listener does.
func (s *restServer) handleLeader(w http.ResponseWriter, r *http.Request) {
	v := s.a.View()
	li := protocol.LeaderInfo{ID: v.ID, URL: v.URL, State: v.Status, Epoch: v.Epoch, LeaderID: v.LeaderID,
		LeaderURL: v.LeaderURL, LeaderWebUI: v.LeaderWebUIURL, LeaderREST: v.LeaderRESTURL}
	if !v.LeaderSince.IsZero() {
		li.LeaderSince = v.LeaderSince.UTC().Format(time.RFC3339)
	}
	protocol.WriteJSON(w, http.StatusOK, li)
}

// wrap adapts a handler returning (status, response) and writes the JSON.
func (s *restServer) wrap(h func(r *http.Request) (int, restResponse)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, resp := h(r)
		resp.ServerSparkVersion = restServerSparkVersion
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(resp); err != nil {
			http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write(buf.Bytes())
	})
}

func errorResponse(msg string) restResponse {
	return restResponse{Action: "ErrorResponse", Message: msg, Success: ptrBool(false)}
}

// handlePathError answers paths no handler matches, with Spark's messages.
func (s *restServer) handlePathError(r *http.Request) (int, restResponse) {
	parts := strings.FieldsFunc(r.URL.Path, func(c rune) bool { return c == '/' })
	var msg string
	mismatch := false
	switch {
	case len(parts) == 0:
		msg = "Missing protocol version."
	case parts[0] == restProtocolVersion && len(parts) == 1:
		msg = "Missing the /submissions prefix."
	case parts[0] == restProtocolVersion && parts[1] == "submissions":
		msg = "Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz."
	case parts[0] == restProtocolVersion:
		msg = "Missing the /submissions prefix."
	default:
		mismatch = true
		msg = fmt.Sprintf("Unknown protocol version '%s'.", parts[0])
	}
	msg += fmt.Sprintf(" Please submit requests through http://[host]:[port]/%s/submissions/...", restProtocolVersion)
	resp := errorResponse(msg)
	if mismatch {
		resp.HighestProtocolVersion = restProtocolVersion
		return statusUnknownProtocolVersion, resp
	}
	return http.StatusBadRequest, resp
}

func missingID(kind string) func(r *http.Request) (int, restResponse) {
	return func(r *http.Request) (int, restResponse) {
		return http.StatusBadRequest, errorResponse(fmt.Sprintf("Submission ID is missing in %s request.", kind))
	}
}

// notAlive fills resp for a master that is not ALIVE. what completes Spark's
// "Can only <what> in ALIVE state. Current state: <S>." It reports whether
// err was a *NotAliveError.
func notAlive(err error, what string, resp *restResponse) bool {
	var na *NotAliveError
	if !errors.As(err, &na) {
		return false
	}
	resp.Success = ptrBool(false)
	resp.Message = fmt.Sprintf("Can only %s in ALIVE state. Current state: %s.", what, na.State)
	hint := na.Hint
	if hint.State == "" {
		hint.State = na.State
	}
	resp.LeaderHint = &hint
	return true
}

// ---- create ----

// errRESTMalformed is wrapped by every create-request validation error.
var errRESTMalformed = errors.New("master: malformed submission request")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errRESTMalformed, fmt.Sprintf(format, args...))
}

// decodeCreateRequest parses and validates a CreateSubmissionRequest body. It
// returns the request, the top-level fields it does not know (sorted), or an
// error wrapping errRESTMalformed that names the offending field.
func decodeCreateRequest(body []byte) (createSubmissionRequest, []string, error) {
	var req createSubmissionRequest
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return req, nil, malformed("the body is not a JSON object: %v", err)
	}
	if raw == nil {
		return req, nil, malformed("the body is not a JSON object")
	}
	var unknown []string
	for k := range raw {
		if !createRequestFields[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"action", &req.Action}, {"clientSparkVersion", &req.ClientSparkVersion},
		{"appResource", &req.AppResource}, {"mainClass", &req.MainClass},
		{"appArgs", &req.AppArgs}, {"sparkProperties", &req.SparkProperties},
		{"environmentVariables", &req.EnvironmentVariables},
	} {
		v, ok := raw[f.name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return req, unknown, malformed("field '%s' has the wrong type: %s", f.name, jsonTypeError(err))
		}
	}
	switch {
	case req.Action == "":
		return req, unknown, malformed("The action field is missing.")
	case req.Action != "CreateSubmissionRequest":
		return req, unknown, malformed("Unexpected action '%s': expected CreateSubmissionRequest.", req.Action)
	case req.ClientSparkVersion == "":
		return req, unknown, malformed("'clientSparkVersion' is missing in message CreateSubmissionRequest.")
	case strings.TrimSpace(req.AppResource) == "":
		return req, unknown, malformed("'appResource' is missing in message CreateSubmissionRequest.")
	case req.SparkProperties == nil:
		return req, unknown, malformed("'sparkProperties' is missing in message CreateSubmissionRequest.")
	case strings.TrimSpace(req.SparkProperties["spark.app.name"]) == "":
		return req, unknown, malformed("Property 'spark.app.name' is missing in message CreateSubmissionRequest.")
	}
	props := req.SparkProperties
	if v, ok := props["spark.driver.supervise"]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return req, unknown, malformed("Property 'spark.driver.supervise' expected boolean value: actual value '%s'.", v)
		}
	}
	for _, k := range []string{"spark.driver.cores", "spark.cores.max"} {
		if v, ok := props[k]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n <= 0 {
				return req, unknown, malformed("Property '%s' expected numeric value: actual value '%s'.", k, v)
			}
		}
	}
	for _, k := range []string{"spark.driver.memory", "spark.executor.memory"} {
		if v, ok := props[k]; ok {
			if _, err := parseMemoryMB(v); err != nil {
				return req, unknown, malformed("Property '%s' expected memory value: actual value '%s'.", k, v)
			}
		}
	}
	return req, unknown, nil
}

func jsonTypeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value)
	}
	return err.Error()
}

// parseMemoryMB parses a JVM-style memory string ("512m", "2g", "1.5g" is
// refused) into MB. Without a unit the value is MB, the unit of
// spark.driver.memory. The result is at least 1 MB.
func parseMemoryMB(s string) (int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("memory %q: no number", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory %q: %w", s, err)
	}
	var shift uint // relative to bytes
	switch s[i:] {
	case "", "m", "mb", "mib":
		shift = 20
	case "b":
		shift = 0
	case "k", "kb", "kib":
		shift = 10
	case "g", "gb", "gib":
		shift = 30
	case "t", "tb", "tib":
		shift = 40
	case "p", "pb", "pib":
		shift = 50
	default:
		return 0, fmt.Errorf("memory %q: unknown unit %q", s, s[i:])
	}
	const maxMB = 1 << 40 // bound the product; no machine has an exabyte
	mb := float64(n) * float64(uint64(1)<<shift) / float64(1<<20)
	if mb < 1 || mb > maxMB {
		return 0, fmt.Errorf("memory %q: out of range", s)
	}
	return int(mb), nil
}

var placeholder = regexp.MustCompile(`\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}`)

// driverSpec turns a validated request into the driver to launch. masterURL
// and restURL (spark://host:port) are this master's; a REST port in
// spark.master is rewritten to the RPC port, as Spark does, so that the
// driver is handed every HA master (SPARK-24794).
func driverSpec(req createSubmissionRequest, masterURL, restURL string, getenv func(string) string) (protocol.DriverSpec, error) {
	props := req.SparkProperties
	spec := protocol.DriverSpec{
		Name:       props["spark.app.name"],
		Command:    append([]string{req.AppResource}, req.AppArgs...),
		Cores:      defaultDriverCores,
		MemoryMB:   defaultDriverMemoryMB,
		MainClass:  req.MainClass,
		Properties: props,
	}
	if v, ok := props["spark.driver.cores"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return spec, malformed("Property 'spark.driver.cores' expected numeric value: actual value '%s'.", v)
		}
		spec.Cores = n
	}
	if v, ok := props["spark.driver.memory"]; ok {
		mb, err := parseMemoryMB(v)
		if err != nil {
			return spec, malformed("Property 'spark.driver.memory' expected memory value: actual value '%s'.", v)
		}
		spec.MemoryMB = mb
	}
	if v, ok := props["spark.driver.supervise"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return spec, malformed("Property 'spark.driver.supervise' expected boolean value: actual value '%s'.", v)
		}
		spec.Supervise = b
	}
	masters := strings.TrimSpace(props["spark.master"])
	if masters == "" {
		masters = masterURL
	} else if rpcPort, restPort := urlPort(masterURL), urlPort(restURL); rpcPort != "" && restPort != "" {
		masters = strings.ReplaceAll(masters, ":"+restPort, ":"+rpcPort)
	}
	spec.Masters = masters
	if len(req.EnvironmentVariables) > 0 {
		spec.Env = map[string]string{}
		for k, v := range req.EnvironmentVariables {
			if k == "SPARK_LOCAL_IP" || k == "SPARK_LOCAL_HOSTNAME" {
				continue // Spark drops these: they name the submitting host
			}
			spec.Env[k] = placeholder.ReplaceAllStringFunc(v, func(m string) string {
				return getenv(placeholder.FindStringSubmatch(m)[1])
			})
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, malformed("%v", err)
	}
	return spec, nil
}

// urlPort returns the port of spark://host:port, or "".
func urlPort(u string) string {
	u = strings.TrimPrefix(u, "spark://")
	if i := strings.LastIndexByte(u, ':'); i >= 0 {
		return u[i+1:]
	}
	return ""
}

func (s *restServer) handleCreate(r *http.Request) (int, restResponse) {
	body, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxBodyBytes+1))
	if err != nil {
		return http.StatusBadRequest, errorResponse("Malformed request: could not read the body: " + err.Error())
	}
	if len(body) > protocol.MaxBodyBytes {
		return http.StatusBadRequest, errorResponse(fmt.Sprintf("Malformed request: the body is larger than %d bytes.", protocol.MaxBodyBytes))
	}
	req, unknown, err := decodeCreateRequest(body)
	if err == nil {
		v := s.a.View()
		var spec protocol.DriverSpec
		spec, err = driverSpec(req, v.URL, v.RESTURL, s.getenv)
		if err == nil {
			return s.submit(r, spec, unknown)
		}
	}
	resp := errorResponse("Malformed request: " + strings.TrimPrefix(err.Error(), errRESTMalformed.Error()+": "))
	resp.UnknownFields = unknown
	return http.StatusBadRequest, resp
}

func (s *restServer) submit(r *http.Request, spec protocol.DriverSpec, unknown []string) (int, restResponse) {
	resp := restResponse{Action: "CreateSubmissionResponse", UnknownFields: unknown}
	id, err := s.a.SubmitDriver(r.Context(), spec)
	var fe *protocol.FieldError
	switch {
	case err == nil:
		resp.Success = ptrBool(true)
		resp.SubmissionID = id
		resp.Message = "Driver successfully submitted as " + id
		s.log.WithField("driver", id).Infof("Driver successfully submitted as %s (REST)", id)
		return http.StatusOK, resp
	case notAlive(err, "accept driver submissions", &resp):
		return http.StatusOK, resp
	case errors.As(err, &fe):
		e := errorResponse("Malformed request: " + fe.Error())
		e.UnknownFields = unknown
		return http.StatusBadRequest, e
	default:
		s.log.WithError(err).Warn("REST submission failed")
		return http.StatusInternalServerError, errorResponse("Internal error while submitting the driver: " + err.Error())
	}
}

// ---- status, kill, killall, clear, readyz ----

func (s *restServer) handleStatus(r *http.Request) (int, restResponse) {
	id := mux.Vars(r)["id"]
	resp := restResponse{Action: "SubmissionStatusResponse", SubmissionID: id}
	st, err := s.a.DriverStatus(r.Context(), id)
	switch {
	case err == nil && st.Found:
		resp.Success = ptrBool(true)
		resp.DriverState = string(st.State)
		resp.WorkerID = st.WorkerID
		resp.WorkerHostPort = st.WorkerHostPort
		if st.Exception != "" {
			resp.Message = "Exception from the cluster:\n" + st.Exception
		}
		return http.StatusOK, resp
	case err == nil, errors.Is(err, ErrNotFound):
		resp.Success = ptrBool(false)
		resp.Message = fmt.Sprintf("Driver %s not found.", id)
		return http.StatusOK, resp
	case notAlive(err, "request driver status", &resp):
		return http.StatusOK, resp
	default:
		s.log.WithError(err).WithField("driver", id).Warn("REST status failed")
		return http.StatusInternalServerError, errorResponse("Internal error while requesting driver status: " + err.Error())
	}
}

func (s *restServer) handleKill(r *http.Request) (int, restResponse) {
	id := mux.Vars(r)["id"]
	resp := restResponse{Action: "KillSubmissionResponse", SubmissionID: id}
	err := s.a.KillDriver(r.Context(), id)
	switch {
	case err == nil:
		resp.Success = ptrBool(true)
		resp.Message = fmt.Sprintf("Kill request for %s submitted", id)
		s.log.WithField("driver", id).Infof("Kill request for %s submitted (REST)", id)
		return http.StatusOK, resp
	case errors.Is(err, ErrNotFound):
		resp.Success = ptrBool(false)
		resp.Message = fmt.Sprintf("Driver %s has already finished or does not exist", id)
		return http.StatusOK, resp
	case notAlive(err, "kill drivers", &resp):
		return http.StatusOK, resp
	default:
		s.log.WithError(err).WithField("driver", id).Warn("REST kill failed")
		return http.StatusInternalServerError, errorResponse("Internal error while killing the driver: " + err.Error())
	}
}

func (s *restServer) handleKillAll(r *http.Request) (int, restResponse) {
	resp := restResponse{Action: "KillAllSubmissionResponse"}
	err := s.a.KillAllDrivers(r.Context())
	switch {
	case err == nil:
		resp.Success = ptrBool(true)
		resp.Message = "Kill request for all drivers submitted"
		return http.StatusOK, resp
	case notAlive(err, "kill drivers", &resp):
		return http.StatusOK, resp
	default:
		s.log.WithError(err).Warn("REST killall failed")
		return http.StatusInternalServerError, errorResponse("Internal error while killing all drivers: " + err.Error())
	}
}

func (s *restServer) handleClear(r *http.Request) (int, restResponse) {
	resp := restResponse{Action: "ClearResponse"}
	err := s.a.ClearCompleted(r.Context())
	switch {
	case err == nil:
		resp.Success = ptrBool(true)
		resp.Message = "Cleared completed drivers and applications"
		return http.StatusOK, resp
	case notAlive(err, "clear completed drivers and applications", &resp):
		return http.StatusOK, resp
	default:
		s.log.WithError(err).Warn("REST clear failed")
		return http.StatusInternalServerError, errorResponse("Internal error while clearing: " + err.Error())
	}
}

// handleReadyz answers 200 + ReadyzResponse on the ALIVE master, else 503 +
// ErrorResponse "Master is not ready." with the leader hint.
func (s *restServer) handleReadyz(r *http.Request) (int, restResponse) {
	v := s.a.View()
	if v.Status == protocol.MasterAlive {
		return http.StatusOK, restResponse{Action: "ReadyzResponse", Success: ptrBool(true), Message: "Master is ready."}
	}
	resp := errorResponse("Master is not ready.")
	resp.LeaderHint = &protocol.LeaderHint{State: v.Status, LeaderURL: v.LeaderURL, LeaderWebUI: v.LeaderWebUIURL, Epoch: v.Epoch}
	return http.StatusServiceUnavailable, resp
}
