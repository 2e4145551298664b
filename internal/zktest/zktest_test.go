package zktest

import (
	"testing"
	"time"
)

func TestStandalone(t *testing.T) {
	e := Start(t, 1)
	if l := e.Leader(); l != 0 {
		t.Fatalf("leader = %d, want 0", l)
	}
	m, err := e.Servers()[0].Mode()
	if err != nil || m != "standalone" {
		t.Fatalf("mode = %q, %v", m, err)
	}
	e.Stop(0)
	if e.Servers()[0].Running() {
		t.Fatal("still running after Stop")
	}
	e.Start(0)
	if err := e.WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}
