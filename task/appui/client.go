package appui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// startedRE finds the UI's address in a driver's log ("Bound SparkUI to
// ..., and started at http://host:port").
var startedRE = regexp.MustCompile(`started at (http://\S+)`)

// URLFromLog returns the application UI's URL from a driver's log, or "".
func URLFromLog(log string) string {
	if m := startedRE.FindStringSubmatch(log); m != nil {
		return m[1]
	}
	return ""
}

// CompletedTasks asks the application UI at base how many tasks its first
// application's first job has completed (numCompletedTasks of
// /api/v1/applications/<id>/jobs); 0 when it cannot tell yet.
func CompletedTasks(base string) int {
	if base == "" {
		return 0
	}
	var apps []struct {
		ID string `json:"id"`
	}
	if getJSON(base+"/api/v1/applications", &apps) != nil || len(apps) == 0 {
		return 0
	}
	var jobs []struct {
		NumCompletedTasks int `json:"numCompletedTasks"`
	}
	if getJSON(base+"/api/v1/applications/"+apps[0].ID+"/jobs", &jobs) != nil || len(jobs) == 0 {
		return 0
	}
	return jobs[0].NumCompletedTasks
}

func getJSON(url string, v any) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
