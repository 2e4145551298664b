package zkrecovery

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sparkd/sparkd/recovery"
	"github.com/sparkd/sparkd/zkutil"
)

// Reasons a term ends, passed to Callbacks.OnRevoked (besides
// recovery.ErrFenced and recovery.ErrResigned). Match with errors.Is.
var (
	// ErrSelfFenced: no reply from ZooKeeper within the self-fence bound.
	ErrSelfFenced = errors.New("zkrecovery: no reply from ZooKeeper within the self-fence bound")
	// ErrSessionLost: the session expired or was replaced by a new one.
	ErrSessionLost = errors.New("zkrecovery: ZooKeeper session expired or changed")
	// ErrCandidateLost: this master's candidate node disappeared.
	ErrCandidateLost = errors.New("zkrecovery: candidate node deleted")
	// ErrStopped: Run's context was cancelled.
	ErrStopped = errors.New("zkrecovery: elector stopped")
	// ErrBadDir: the ZooKeeper directory is not a valid absolute path.
	ErrBadDir = errors.New("zkrecovery: invalid spark.deploy.zookeeper.dir")
)

// Defaults.
const (
	// DefaultReadConcurrency is how many Gets Read keeps in flight.
	DefaultReadConcurrency = 256
	// DefaultSelfFenceFraction of the negotiated session timeout is the
	// self-fence bound: pings go out every third of the timeout, so a healthy
	// session is never silent for more than about a third.
	DefaultSelfFenceFraction = 2.0 / 3.0
)

// Option configures New.
type Option func(*options)

type options struct {
	now            func() time.Time
	selfFenceAfter time.Duration
	readConc       int
	epochFloor     int64
	noMirror       bool
}

// WithoutMirror keeps no standby mirror (mirror.go): taking office reads
// every record, as before the mirror.
func WithoutMirror() Option { return func(o *options) { o.noMirror = true } }

// WithClock replaces time.Now for the self-fence check (tests). The clock
// must carry a monotonic reading comparable with zkutil's LastContact, e.g.
// time.Now().Add(offset).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithSelfFenceAfter sets the self-fence bound. It must be positive and is
// capped below the negotiated session timeout; 0 keeps the default (2/3 of
// the negotiated session timeout).
func WithSelfFenceAfter(d time.Duration) Option {
	return func(o *options) { o.selfFenceAfter = d }
}

// WithEpochFloor sets the lowest epoch a leader opens
// (spark.deploy.zookeeper.epochFloor; default 0: no floor). Epochs derive
// from ZooKeeper's zxids, which survive the loss of the directory but
// restart low in a rebuilt ensemble; a floor above the highest epoch the
// fleet has seen lets workers accept leaders of the new ensemble without a
// restart.
func WithEpochFloor(floor int64) Option { return func(o *options) { o.epochFloor = floor } }

// WithReadConcurrency sets how many Gets Read keeps in flight (default 256).
func WithReadConcurrency(n int) Option { return func(o *options) { o.readConc = n } }

// paths of the layout under dir.
type paths struct {
	dir, election, epoch, status, quarantine string
}

func newPaths(dir string) (paths, error) {
	if dir == "" || !strings.HasPrefix(dir, "/") {
		return paths{}, fmt.Errorf("%w: %q is not an absolute path", ErrBadDir, dir)
	}
	if clean := path.Clean(dir); clean != dir && dir != "/" || strings.ContainsAny(dir, "\x00") {
		return paths{}, fmt.Errorf("%w: %q is not a clean path (no trailing '/', '//', '.', '..')", ErrBadDir, dir)
	}
	return paths{
		dir:        dir,
		election:   path.Join(dir, "leader_election"),
		epoch:      path.Join(dir, "epoch"),
		status:     path.Join(dir, "master_status"),
		quarantine: path.Join(dir, "quarantine"),
	}, nil
}

// New returns the Elector and the Store of one master, sharing conn (which
// the caller owns and closes after Run has returned). The Store's writes are
// fenced by the term the Elector holds; outside a term they fail with
// recovery.ErrNotLeader. Nothing is read or written until Run.
func New(conn *zkutil.Conn, dir string, log *logrus.Entry, opts ...Option) (*Elector, *Store, error) {
	if conn == nil {
		return nil, nil, errors.New("zkrecovery: nil ZooKeeper connection")
	}
	p, err := newPaths(dir)
	if err != nil {
		return nil, nil, err
	}
	o := options{now: time.Now, readConc: DefaultReadConcurrency}
	for _, opt := range opts {
		opt(&o)
	}
	if o.readConc <= 0 {
		return nil, nil, fmt.Errorf("zkrecovery: read concurrency %d must be positive", o.readConc)
	}
	if o.selfFenceAfter < 0 {
		return nil, nil, fmt.Errorf("zkrecovery: self-fence bound %v must not be negative", o.selfFenceAfter)
	}
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	log = log.WithField("zkDir", dir)
	sh := &shared{revoke: make(chan revocation, 1)}
	e := &Elector{conn: conn, log: log, p: p, o: o, sh: sh, resignCh: make(chan chan error, 1)}
	s := &Store{conn: conn, log: log, p: p, o: o, sh: sh}
	if !o.noMirror {
		s.mir.init()
		sh.mirror = s
		conn.SetWatchHandler(s.onWatch)
	}
	return e, s, nil
}

// term is one tenure of office.
type term struct {
	epoch   int64
	version int32  // version of the epoch znode set when taking office
	node    string // candidate node path (checked in every write)
	session int64

	// ended is set (under shared.mu) when the term is revoked.
	ended  bool
	reason error
}

// shared connects the Elector and the Store of one master.
type shared struct {
	// mirror, when set, is the Store whose standby mirror Run keeps.
	mirror *Store

	mu  sync.Mutex
	cur *term // nil: never in office, or resigned
	// revoke carries a term that must end and why: a fenced write (Store ->
	// Elector) or a failed Confirm. It holds the latest request only.
	revoke chan revocation
}

// revocation asks the campaign to end term t for reason.
type revocation struct {
	t      *term
	reason error
}

func (s *shared) current() *term {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	t := *s.cur
	return &t
}

func (s *shared) begin(t *term) {
	s.mu.Lock()
	s.cur = t
	s.mu.Unlock()
}

// end marks t as over; later writes are refused without being sent.
func (s *shared) end(t *term, reason error) {
	s.mu.Lock()
	if s.cur == t {
		c := *t
		c.ended, c.reason = true, reason
		s.cur = &c
	}
	s.mu.Unlock()
}

// clear forgets the term (after Resign): writes fail with ErrNotLeader.
func (s *shared) clear() {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
}

// reportFenced tells the Elector that a write of epoch was fenced.
func (s *shared) reportFenced(epoch int64) { s.endTerm(epoch, recovery.ErrFenced) }

// endTerm asks the Elector to end the term of epoch, if it is still the
// current one. It never blocks: a request left over from an earlier term is
// replaced, so that it cannot crowd out this one.
func (s *shared) endTerm(epoch int64, reason error) {
	s.mu.Lock()
	t := s.cur
	s.mu.Unlock()
	if t == nil || t.ended || t.epoch != epoch {
		return
	}
	for {
		select {
		case s.revoke <- revocation{t, reason}:
			return
		default:
		}
		select {
		case <-s.revoke:
		default:
		}
	}
}

var _ recovery.Elector = (*Elector)(nil)
var _ recovery.Store = (*Store)(nil)
