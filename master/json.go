package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sparkd/sparkd/protocol"
)

// The master's /json document, with Spark's field names (JsonProtocol.
// writeMasterState) plus sparkd's own: "epoch", "leader", "leaderurl",
// "leaderwebuiurl" at the top and "waitingreason", "executors" per
// application. Memory is in MB; cores and memory count ALIVE workers only.

type masterJSON struct {
	URL              string           `json:"url"`
	Workers          []workerJSON     `json:"workers"`
	AliveWorkers     int              `json:"aliveworkers"`
	Cores            int              `json:"cores"`
	CoresUsed        int              `json:"coresused"`
	Memory           int              `json:"memory"`
	MemoryUsed       int              `json:"memoryused"`
	Resources        []map[string]any `json:"resources"`
	ResourcesUsed    []map[string]any `json:"resourcesused"`
	ActiveApps       []appJSON        `json:"activeapps"`
	CompletedApps    []appJSON        `json:"completedapps"`
	ActiveDrivers    []driverJSON     `json:"activedrivers"`
	CompletedDrivers []driverJSON     `json:"completeddrivers"`
	Status           string           `json:"status"`
	Epoch            int64            `json:"epoch"`
	// Recovering (sparkd): an ALIVE leader is still waiting for stored
	// workers or applications to answer MasterChanged.
	Recovering     bool   `json:"recovering"`
	Leader         string `json:"leader"`
	LeaderURL      string `json:"leaderurl"`
	LeaderWebUIURL string `json:"leaderwebuiurl"`
}

type workerJSON struct {
	ID            string         `json:"id"`
	Host          string         `json:"host"`
	Port          int            `json:"port"`
	WebUIAddress  string         `json:"webuiaddress"`
	Cores         int            `json:"cores"`
	CoresUsed     int            `json:"coresused"`
	CoresFree     int            `json:"coresfree"`
	Memory        int            `json:"memory"`
	MemoryUsed    int            `json:"memoryused"`
	MemoryFree    int            `json:"memoryfree"`
	Resources     map[string]any `json:"resources"`
	ResourcesUsed map[string]any `json:"resourcesused"`
	ResourcesFree map[string]any `json:"resourcesfree"`
	State         string         `json:"state"`
	LastHeartbeat int64          `json:"lastheartbeat"` // ms since the Unix epoch
}

type appJSON struct {
	ID                   string `json:"id"`
	StartTime            int64  `json:"starttime"` // ms since the Unix epoch
	Name                 string `json:"name"`
	Cores                int    `json:"cores"` // granted
	User                 string `json:"user"`
	MemoryPerExecutor    int    `json:"memoryperexecutor"`
	MemoryPerSlave       int    `json:"memoryperslave"` // deprecated alias kept by Spark
	ResourcesPerExecutor []any  `json:"resourcesperexecutor"`
	ResourcesPerSlave    []any  `json:"resourcesperslave"`
	SubmitDate           string `json:"submitdate"`
	State                string `json:"state"`
	Duration             int64  `json:"duration"` // ms
	Executors            int    `json:"executors"`
	WaitingReason        string `json:"waitingreason"`
}

type driverJSON struct {
	ID         string `json:"id"`
	StartTime  string `json:"starttime"` // ms since the Unix epoch, as a string (Spark)
	State      string `json:"state"`
	Cores      int    `json:"cores"`
	Memory     int    `json:"memory"`
	Resources  []any  `json:"resources"`
	SubmitDate string `json:"submitdate"`
	Worker     string `json:"worker"` // "None" while unassigned
	MainClass  string `json:"mainclass"`
}

// clusterUtilizationJSON is /json/clusterutilization. Utilization is an
// integer percent, 100 when there is no capacity (Spark).
type clusterUtilizationJSON struct {
	WaitingDrivers    int `json:"waitingDrivers"`
	Cores             int `json:"cores"`
	CoresUsed         int `json:"coresused"`
	CoresUtilization  int `json:"coresutilization"`
	Memory            int `json:"memory"`
	MemoryUsed        int `json:"memoryused"`
	MemoryUtilization int `json:"memoryutilization"`
}

// javaDate is java.util.Date.toString's layout, used by Spark's "submitdate".
const javaDate = "Mon Jan 02 15:04:05 MST 2006"

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// aliveTotals sums cores and memory (MB) over ALIVE workers, as Spark does.
func aliveTotals(v View) (alive, cores, coresUsed, mem, memUsed int) {
	for _, w := range v.Workers {
		if w.State != protocol.WorkerAlive {
			continue
		}
		alive++
		cores += w.Cores
		coresUsed += w.CoresUsed
		mem += w.MemoryMB
		memUsed += w.MemoryUsedMB
	}
	return
}

// appDuration is Spark's ApplicationInfo.duration in ms: end - start once
// ended, now - start while running.
func appDuration(a AppView, now time.Time) time.Duration {
	if a.SubmitTime.IsZero() {
		return 0
	}
	end := a.EndTime
	if end.IsZero() {
		end = now
	}
	if d := end.Sub(a.SubmitTime); d > 0 {
		return d
	}
	return 0
}

func buildMasterJSON(v View, now time.Time) masterJSON {
	alive, cores, coresUsed, mem, memUsed := aliveTotals(v)
	out := masterJSON{
		URL:              v.URL,
		Workers:          make([]workerJSON, 0, len(v.Workers)),
		AliveWorkers:     alive,
		Cores:            cores,
		CoresUsed:        coresUsed,
		Memory:           mem,
		MemoryUsed:       memUsed,
		Resources:        []map[string]any{},
		ResourcesUsed:    []map[string]any{},
		ActiveApps:       make([]appJSON, 0, len(v.ActiveApps)),
		CompletedApps:    make([]appJSON, 0, len(v.CompletedApps)),
		ActiveDrivers:    make([]driverJSON, 0, len(v.ActiveDrivers)),
		CompletedDrivers: make([]driverJSON, 0, len(v.CompletedDrivers)),
		Status:           string(v.Status),
		Epoch:            v.Epoch,
		Recovering:       v.HA.Recovering,
		Leader:           v.LeaderID,
		LeaderURL:        v.LeaderURL,
		LeaderWebUIURL:   v.LeaderWebUIURL,
	}
	for _, w := range v.Workers {
		out.Workers = append(out.Workers, workerJSON{
			ID: w.ID, Host: w.Host, Port: w.Port, WebUIAddress: w.WebUIAddress,
			Cores: w.Cores, CoresUsed: w.CoresUsed, CoresFree: w.Cores - w.CoresUsed,
			Memory: w.MemoryMB, MemoryUsed: w.MemoryUsedMB, MemoryFree: w.MemoryMB - w.MemoryUsedMB,
			Resources: map[string]any{}, ResourcesUsed: map[string]any{}, ResourcesFree: map[string]any{},
			State: string(w.State), LastHeartbeat: msOf(w.LastHeartbeat),
		})
		out.Resources = append(out.Resources, map[string]any{})
		out.ResourcesUsed = append(out.ResourcesUsed, map[string]any{})
	}
	for _, a := range v.ActiveApps {
		out.ActiveApps = append(out.ActiveApps, buildAppJSON(a, now))
	}
	for _, a := range v.CompletedApps {
		out.CompletedApps = append(out.CompletedApps, buildAppJSON(a, now))
	}
	for _, d := range v.ActiveDrivers {
		out.ActiveDrivers = append(out.ActiveDrivers, buildDriverJSON(d))
	}
	for _, d := range v.CompletedDrivers {
		out.CompletedDrivers = append(out.CompletedDrivers, buildDriverJSON(d))
	}
	return out
}

func buildAppJSON(a AppView, now time.Time) appJSON {
	submit := ""
	if !a.SubmitTime.IsZero() {
		submit = a.SubmitTime.Format(javaDate)
	}
	return appJSON{
		ID: a.ID, StartTime: msOf(a.SubmitTime), Name: a.Name, Cores: a.Cores, User: a.User,
		MemoryPerExecutor: a.MemoryPerExecutorMB, MemoryPerSlave: a.MemoryPerExecutorMB,
		ResourcesPerExecutor: []any{}, ResourcesPerSlave: []any{},
		SubmitDate: submit, State: string(a.State), Duration: appDuration(a, now).Milliseconds(),
		Executors: a.Executors, WaitingReason: a.WaitingReason,
	}
}

func buildDriverJSON(d DriverView) driverJSON {
	worker := d.WorkerID
	if worker == "" {
		worker = "None"
	}
	submit := ""
	if !d.SubmitTime.IsZero() {
		submit = d.SubmitTime.Format(javaDate)
	}
	return driverJSON{
		ID: d.ID, StartTime: strconv.FormatInt(msOf(d.SubmitTime), 10), State: string(d.State),
		Cores: d.Cores, Memory: d.MemoryMB, Resources: []any{}, SubmitDate: submit,
		Worker: worker, MainClass: d.MainClass,
	}
}

func buildClusterUtilization(v View) clusterUtilizationJSON {
	_, cores, coresUsed, mem, memUsed := aliveTotals(v)
	waiting := 0
	for _, d := range v.ActiveDrivers {
		if d.State == protocol.DriverSubmitted {
			waiting++
		}
	}
	return clusterUtilizationJSON{
		WaitingDrivers: waiting,
		Cores:          cores, CoresUsed: coresUsed, CoresUtilization: percent(coresUsed, cores),
		Memory: mem, MemoryUsed: memUsed, MemoryUtilization: percent(memUsed, mem),
	}
}

func percent(used, total int) int {
	if total <= 0 {
		return 100
	}
	return int(int64(used) * 100 / int64(total))
}

// jsonField answers /json/<field> the way Spark's MasterPage does,
// {"<field>": value}; an unknown field is a 404 naming it and the known
// ones (Spark answers {"<field>": ""}, which hides a typo in a probe).
func jsonField(doc masterJSON, field string) (map[string]any, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, err
	}
	if v, ok := all[field]; ok {
		return map[string]any{field: v}, nil
	}
	known := []string{"clusterutilization"}
	for k := range all {
		known = append(known, k)
	}
	sort.Strings(known)
	return nil, &protocol.StatusError{Code: http.StatusNotFound,
		Message: fmt.Sprintf("unknown /json field %q; known fields: %s", field, strings.Join(known, ", "))}
}

func (u *webUI) handleJSON(r *http.Request) (any, error) {
	return buildMasterJSON(u.a.View(), u.now()), nil
}

func (u *webUI) handleJSONField(r *http.Request) (any, error) {
	field := mux.Vars(r)["field"]
	if field == "clusterutilization" {
		return buildClusterUtilization(u.a.View()), nil
	}
	return jsonField(buildMasterJSON(u.a.View(), u.now()), field)
}
