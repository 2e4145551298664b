package zkutil

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConnect(t *testing.T) {
	tests := []struct {
		in      string
		servers []string
		chroot  string
		wantErr bool
	}{
		{in: "zk1:2181", servers: []string{"zk1:2181"}},
		{in: "zk1", servers: []string{"zk1:2181"}},
		{in: " zk1:2181, zk2:2182 ,zk3", servers: []string{"zk1:2181", "zk2:2182", "zk3:2181"}},
		{in: "zk1:2181,zk2:2181/sparkd", servers: []string{"zk1:2181", "zk2:2181"}, chroot: "/sparkd"},
		{in: "zk1:2181/a/b", servers: []string{"zk1:2181"}, chroot: "/a/b"},
		{in: "zk1:2181/", servers: []string{"zk1:2181"}},
		{in: "[::1]:2181,[fe80::1]", servers: []string{"[::1]:2181", "[fe80::1]:2181"}},
		{in: "127.0.0.1:1/x", servers: []string{"127.0.0.1:1"}, chroot: "/x"},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "zk1:2181,,zk2", wantErr: true},
		{in: "zk1:0", wantErr: true},
		{in: "zk1:65536", wantErr: true},
		{in: "zk1:abc", wantErr: true},
		{in: "zk1:", wantErr: true},
		{in: ":2181", wantErr: true},
		{in: "::1:2181", wantErr: true},
		{in: "[::1", wantErr: true},
		{in: "[::1]x", wantErr: true},
		{in: "zk://zk1:2181", wantErr: true},
		{in: "zk1:2181/a/", wantErr: true},
		{in: "zk1:2181/a//b", wantErr: true},
		{in: "zk1:2181/a/../b", wantErr: true},
		{in: "/chroot", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			servers, chroot, err := ParseConnect(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrBadConnect), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.servers, servers)
			assert.Equal(t, tc.chroot, chroot)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{Connect: "x"}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, DefaultSessionTimeout, cfg.SessionTimeout)
	assert.Equal(t, DefaultConnectTimeout, cfg.ConnectTimeout)
	assert.Equal(t, DefaultCallTimeout, cfg.CallTimeout)
	require.Len(t, cfg.ACL, 1)
	assert.Equal(t, "world", cfg.ACL[0].Scheme)

	cfg, err = Config{Auth: "u:p"}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, "digest", cfg.AuthScheme)
	require.Len(t, cfg.ACL, 1)
	assert.Equal(t, "digest", cfg.ACL[0].Scheme)

	for name, bad := range map[string]Config{
		"negative session":   {SessionTimeout: -1},
		"negative call":      {CallTimeout: -time.Second},
		"digest without ':'": {Auth: "nopass"},
		"scheme only":        {AuthScheme: "digest"},
		"empty user":         {Auth: ":p"},
	} {
		_, err := bad.withDefaults()
		assert.True(t, errors.Is(err, ErrBadConfig), "%s: %v", name, err)
	}
}

func TestFullAndRel(t *testing.T) {
	c := &Conn{chroot: "/sparkd"}
	for in, want := range map[string]string{"/": "/sparkd", "/a": "/sparkd/a", "/a/b": "/sparkd/a/b"} {
		got, err := c.full(in, false)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		assert.Equal(t, in, c.rel(got))
	}
	got, err := c.full("/dir/", true)
	require.NoError(t, err)
	assert.Equal(t, "/sparkd/dir/", got)
	for _, bad := range []string{"", "a", "/a/", "//", "/a/./b", "/a\x00"} {
		_, err := c.full(bad, false)
		assert.True(t, errors.Is(err, ErrBadPath), "%q: %v", bad, err)
	}
	assert.Equal(t, "/sparkdX", c.rel("/sparkdX"))
}

func TestEventQueueCoalesces(t *testing.T) {
	q := newEventQueue()
	// Nobody reads: the out buffer fills, then pending coalesces.
	for i := 0; i < 100; i++ {
		q.push(Event{State: Disconnected, SessionID: 1})
		q.push(Event{State: Connected, SessionID: 1})
	}
	q.push(Event{State: Expired, SessionID: 1})
	q.push(Event{State: Connected, SessionID: 2})
	q.push(Event{State: Disconnected, SessionID: 2})
	q.push(Event{State: Expired, SessionID: 2})
	q.push(Event{State: Connected, SessionID: 3})

	var got []Event
	deadline := time.After(5 * time.Second)
	for len(got) == 0 || got[len(got)-1] != (Event{State: Connected, SessionID: 3}) {
		select {
		case ev := <-q.out:
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("latest event never delivered; got %v", got)
		}
	}
	expired := 0
	for _, ev := range got {
		if ev.State == Expired {
			expired++
		}
	}
	assert.Equal(t, 2, expired, "every expiry delivered: %v", got)
	assert.Less(t, len(got), 30, "coalesced: %v", got)

	q.close(Event{State: Closed, SessionID: 3})
	ev, ok := <-q.out
	require.True(t, ok)
	assert.Equal(t, Closed, ev.State)
	_, ok = <-q.out
	assert.False(t, ok, "closed after Closed")
}

func TestEventQueuePushNeverBlocks(t *testing.T) {
	q := newEventQueue()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10000; i++ {
			q.push(Event{State: Expired, SessionID: int64(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("push blocked")
	}
	q.close(Event{State: Closed})
	var last Event
	for ev := range q.out {
		last = ev
	}
	assert.Equal(t, Closed, last.State)
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "Expired", Expired.String())
	assert.Equal(t, "State(9)", State(9).String())
}

// Every expiry is delivered, however many pile up before anyone reads:
// the queue coalesces only Disconnected/Connected, and drops nothing.
func TestEventQueueNeverDropsAnExpiry(t *testing.T) {
	q := newEventQueue()
	t.Cleanup(func() { q.close(Event{State: Closed}) })
	const n = 500
	for i := 1; i <= n; i++ {
		q.push(Event{State: Disconnected, SessionID: int64(i)})
		q.push(Event{State: Expired, SessionID: int64(i)})
	}
	for i := 1; i <= n; i++ {
		for {
			select {
			case ev := <-q.out:
				if ev.State != Expired {
					continue // the coalesced Disconnected in between
				}
				require.Equal(t, int64(i), ev.SessionID, "expiries arrive in order, none missing")
			case <-time.After(5 * time.Second):
				t.Fatalf("expiry %d of %d never delivered", i, n)
			}
			break
		}
	}
}
