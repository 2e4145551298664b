package zkutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"
)

// full maps a chroot-relative path to the server path. seq allows the
// trailing slash of a sequential node's parent ("/dir/").
func (c *Conn) full(p string, seq bool) (string, error) {
	check := p
	if seq && len(p) > 1 && strings.HasSuffix(p, "/") {
		check = strings.TrimSuffix(p, "/")
	}
	if err := validatePath(check); err != nil {
		return "", err
	}
	if c.chroot == "" {
		return p, nil
	}
	if p == "/" {
		return c.chroot, nil
	}
	return c.chroot + p, nil
}

// rel maps a server path back to a chroot-relative one.
func (c *Conn) rel(p string) string {
	if c.chroot == "" || !strings.HasPrefix(p, c.chroot) {
		return p
	}
	r := p[len(c.chroot):]
	if r == "" {
		return "/"
	}
	if r[0] != '/' {
		return p // a sibling such as /chrootX, not below the chroot
	}
	return r
}

// watch forwards a one-shot watch channel with event paths made
// chroot-relative. The library closes its channel after one event (also on
// session expiry and Close), which ends the forwarder.
func (c *Conn) watch(ch <-chan zk.Event) <-chan zk.Event {
	if c.chroot == "" || ch == nil {
		return ch
	}
	out := make(chan zk.Event, 1)
	go func() {
		defer close(out)
		for ev := range ch {
			if ev.Path != "" {
				ev.Path = c.rel(ev.Path)
			}
			out <- ev
		}
	}()
	return out
}

type getResult struct {
	data []byte
	stat *zk.Stat
	ch   <-chan zk.Event
}

// Get reads a node.
func (c *Conn) Get(ctx context.Context, path string) ([]byte, *zk.Stat, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("zkutil: get: %w", err)
	}
	r, err := run(c, ctx, "get", path, func(zc *zk.Conn) (getResult, error) {
		d, s, err := zc.Get(fp)
		return getResult{data: d, stat: s}, err
	})
	return r.data, r.stat, err
}

// GetW reads a node and sets a one-shot data watch.
func (c *Conn) GetW(ctx context.Context, path string) ([]byte, *zk.Stat, <-chan zk.Event, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("zkutil: getw: %w", err)
	}
	r, err := run(c, ctx, "getw", path, func(zc *zk.Conn) (getResult, error) {
		d, s, ch, err := zc.GetW(fp)
		return getResult{data: d, stat: s, ch: ch}, err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return r.data, r.stat, c.watch(r.ch), nil
}

// GetWatched reads a node and sets a one-shot data watch whose event only
// goes to the SetWatchHandler: no channel, no goroutine, so a standby can
// watch thousands of nodes for free.
func (c *Conn) GetWatched(ctx context.Context, path string) ([]byte, *zk.Stat, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("zkutil: getw: %w", err)
	}
	r, err := run(c, ctx, "getw", path, func(zc *zk.Conn) (getResult, error) {
		d, s, _, err := zc.GetW(fp) // the channel is buffered: unread, it never blocks the library
		return getResult{data: d, stat: s}, err
	})
	return r.data, r.stat, err
}

// ChildrenWatched lists a node's children and sets a one-shot child watch
// whose event only goes to the SetWatchHandler (see GetWatched).
func (c *Conn) ChildrenWatched(ctx context.Context, path string) ([]string, *zk.Stat, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("zkutil: childrenw: %w", err)
	}
	type res struct {
		names []string
		stat  *zk.Stat
	}
	r, err := run(c, ctx, "childrenw", path, func(zc *zk.Conn) (res, error) {
		n, s, _, err := zc.ChildrenW(fp)
		return res{n, s}, err
	})
	return r.names, r.stat, err
}

type existsResult struct {
	ok   bool
	stat *zk.Stat
	ch   <-chan zk.Event
}

// Exists reports whether a node exists (a missing node is not an error).
func (c *Conn) Exists(ctx context.Context, path string) (bool, *zk.Stat, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return false, nil, fmt.Errorf("zkutil: exists: %w", err)
	}
	r, err := run(c, ctx, "exists", path, func(zc *zk.Conn) (existsResult, error) {
		ok, s, err := zc.Exists(fp)
		return existsResult{ok: ok, stat: s}, err
	})
	return r.ok, r.stat, err
}

// ExistsW is Exists with a one-shot watch (on creation when missing, on data
// change or deletion when present).
func (c *Conn) ExistsW(ctx context.Context, path string) (bool, *zk.Stat, <-chan zk.Event, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return false, nil, nil, fmt.Errorf("zkutil: existsw: %w", err)
	}
	r, err := run(c, ctx, "existsw", path, func(zc *zk.Conn) (existsResult, error) {
		ok, s, ch, err := zc.ExistsW(fp)
		return existsResult{ok: ok, stat: s, ch: ch}, err
	})
	if err != nil {
		return false, nil, nil, err
	}
	return r.ok, r.stat, c.watch(r.ch), nil
}

type childrenResult struct {
	names []string
	stat  *zk.Stat
	ch    <-chan zk.Event
}

// Children lists a node's children (names, not paths; in no particular order).
func (c *Conn) Children(ctx context.Context, path string) ([]string, *zk.Stat, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("zkutil: children: %w", err)
	}
	r, err := run(c, ctx, "children", path, func(zc *zk.Conn) (childrenResult, error) {
		n, s, err := zc.Children(fp)
		return childrenResult{names: n, stat: s}, err
	})
	return r.names, r.stat, err
}

// ChildrenW is Children with a one-shot child watch.
func (c *Conn) ChildrenW(ctx context.Context, path string) ([]string, *zk.Stat, <-chan zk.Event, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("zkutil: childrenw: %w", err)
	}
	r, err := run(c, ctx, "childrenw", path, func(zc *zk.Conn) (childrenResult, error) {
		n, s, ch, err := zc.ChildrenW(fp)
		return childrenResult{names: n, stat: s, ch: ch}, err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return r.names, r.stat, c.watch(r.ch), nil
}

// Create creates a node with the Conn's ACL and returns its (chroot-relative)
// path, which differs from path for sequential nodes. flags are zk.Flag*.
func (c *Conn) Create(ctx context.Context, path string, data []byte, flags int32) (string, error) {
	fp, err := c.full(path, flags&zk.FlagSequence != 0)
	if err != nil {
		return "", fmt.Errorf("zkutil: create: %w", err)
	}
	p, err := run(c, ctx, "create", path, func(zc *zk.Conn) (string, error) {
		return zc.Create(fp, data, flags, c.acl)
	})
	if err != nil {
		return "", err
	}
	return c.rel(p), nil
}

// CreateProtectedEphemeralSequential creates an ephemeral sequential node
// whose name carries a random GUID, so that after a connection loss the
// library can find out whether the create happened (ha-anchors P6). path is
// "<parent>/<prefix>"; the result is the created node's path.
func (c *Conn) CreateProtectedEphemeralSequential(ctx context.Context, path string, data []byte) (string, error) {
	fp, err := c.full(path, true)
	if err != nil {
		return "", fmt.Errorf("zkutil: create protected: %w", err)
	}
	p, err := run(c, ctx, "create protected", path, func(zc *zk.Conn) (string, error) {
		return zc.CreateProtectedEphemeralSequential(fp, data, c.acl)
	})
	if err != nil {
		return "", err
	}
	return c.rel(p), nil
}

// Set writes a node's data if its version matches (-1: any version).
func (c *Conn) Set(ctx context.Context, path string, data []byte, version int32) (*zk.Stat, error) {
	fp, err := c.full(path, false)
	if err != nil {
		return nil, fmt.Errorf("zkutil: set: %w", err)
	}
	return run(c, ctx, "set", path, func(zc *zk.Conn) (*zk.Stat, error) {
		return zc.Set(fp, data, version)
	})
}

// Delete deletes a node if its version matches (-1: any version).
func (c *Conn) Delete(ctx context.Context, path string, version int32) error {
	fp, err := c.full(path, false)
	if err != nil {
		return fmt.Errorf("zkutil: delete: %w", err)
	}
	_, err = run(c, ctx, "delete", path, func(zc *zk.Conn) (struct{}, error) {
		return struct{}{}, zc.Delete(fp, version)
	})
	return err
}

// Sync makes the server this session is connected to catch up with the
// ensemble's leader for path, so that reads issued after it returns see every
// write committed before it was sent (ZooKeeper reads are otherwise served
// from the local, possibly lagging, replica).
func (c *Conn) Sync(ctx context.Context, path string) error {
	fp, err := c.full(path, false)
	if err != nil {
		return fmt.Errorf("zkutil: sync: %w", err)
	}
	_, err = run(c, ctx, "sync", path, func(zc *zk.Conn) (string, error) {
		return zc.Sync(fp)
	})
	return err
}

// ErrBadOp means Multi was given an operation it does not know.
var ErrBadOp = errors.New("zkutil: unsupported multi op")

// Multi runs ops atomically: all or none. Each op is a *zk.CreateRequest,
// *zk.SetDataRequest, *zk.DeleteRequest or *zk.CheckVersionRequest (or the
// same types by value) with chroot-relative paths; a CreateRequest with a nil
// Acl gets the Conn's ACL. The caller's ops are not modified. The error is
// that of the first failing op (e.g. zk.ErrBadVersion); the per-op results
// are returned with it when the server answered.
func (c *Conn) Multi(ctx context.Context, ops ...any) ([]zk.MultiResponse, error) {
	mapped := make([]any, len(ops))
	for i, op := range ops {
		var err error
		switch o := op.(type) {
		case *zk.CreateRequest:
			mapped[i], err = c.mapCreate(*o)
		case zk.CreateRequest:
			mapped[i], err = c.mapCreate(o)
		case *zk.SetDataRequest:
			cp := *o
			cp.Path, err = c.full(o.Path, false)
			mapped[i] = &cp
		case zk.SetDataRequest:
			o.Path, err = c.full(o.Path, false)
			mapped[i] = &o
		case *zk.DeleteRequest:
			cp := *o
			cp.Path, err = c.full(o.Path, false)
			mapped[i] = &cp
		case zk.DeleteRequest:
			o.Path, err = c.full(o.Path, false)
			mapped[i] = &o
		case *zk.CheckVersionRequest:
			cp := *o
			cp.Path, err = c.full(o.Path, false)
			mapped[i] = &cp
		case zk.CheckVersionRequest:
			o.Path, err = c.full(o.Path, false)
			mapped[i] = &o
		default:
			err = fmt.Errorf("%w: %T", ErrBadOp, op)
		}
		if err != nil {
			return nil, fmt.Errorf("zkutil: multi: op %d: %w", i, err)
		}
	}
	res, err := run(c, ctx, "multi", fmt.Sprintf("(%d ops)", len(ops)), func(zc *zk.Conn) ([]zk.MultiResponse, error) {
		return zc.Multi(mapped...)
	})
	for i := range res {
		if res[i].String != "" {
			res[i].String = c.rel(res[i].String)
		}
	}
	return res, err
}

func (c *Conn) mapCreate(o zk.CreateRequest) (*zk.CreateRequest, error) {
	var err error
	o.Path, err = c.full(o.Path, o.Flags&zk.FlagSequence != 0)
	if o.Acl == nil {
		o.Acl = c.acl
	}
	return &o, err
}

// EnsurePath creates path and its missing ancestors as empty persistent
// nodes with the Conn's ACL. Nodes that exist (or are created concurrently)
// are fine. The whole operation has one deadline.
func (c *Conn) EnsurePath(ctx context.Context, path string) error {
	fp, err := c.full(path, false)
	if err != nil {
		return fmt.Errorf("zkutil: ensure path: %w", err)
	}
	return c.ensureFull(ctx, fp)
}

// ensureFull is EnsurePath on a server path (chroot included).
func (c *Conn) ensureFull(ctx context.Context, fp string) error {
	if fp == "/" {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	exists := func(p string) (bool, error) {
		return run(c, ctx, "ensure path", p, func(zc *zk.Conn) (bool, error) {
			ok, _, err := zc.Exists(p)
			return ok, err
		})
	}
	if ok, err := exists(fp); err != nil || ok {
		return err
	}
	parts := strings.Split(fp[1:], "/")
	for i := range parts {
		p := "/" + strings.Join(parts[:i+1], "/")
		ok, err := exists(p)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		_, err = run(c, ctx, "ensure path", p, func(zc *zk.Conn) (string, error) {
			return zc.Create(p, nil, 0, c.acl)
		})
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}
