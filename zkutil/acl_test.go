package zkutil_test

import (
	"errors"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/zkutil"
)

// Nodes written before ACLs were turned on get the ACL when ApplyACL walks
// the directory; afterwards a client without the credentials can neither
// read nor write them, and a second pass changes nothing.
func TestApplyACLToAnExistingDirectory(t *testing.T) {
	e := zktest.Start(t, 1)
	ctx := ctxT(t)
	open, _ := connect(t, zkutil.Config{Connect: e.Connect()})
	require.NoError(t, open.EnsurePath(ctx, "/spark/master_status"))
	for _, p := range []string{"/spark/epoch", "/spark/master_status/app_1", "/elsewhere"} {
		_, err := open.Create(ctx, p, []byte("x"), 0)
		require.NoError(t, err)
	}
	owner, _ := connect(t, zkutil.Config{Connect: e.Connect(), Auth: "sparkd:pw"})
	changed, err := owner.ApplyACL(ctx, "/spark")
	require.NoError(t, err)
	var paths []string
	for _, c := range changed {
		paths = append(paths, c.Path)
		assert.Equal(t, zk.WorldACL(zk.PermAll), c.Was)
	}
	assert.Equal(t, []string{"/spark", "/spark/epoch", "/spark/master_status", "/spark/master_status/app_1"}, paths)

	_, _, err = open.Get(ctx, "/spark/epoch")
	assert.True(t, errors.Is(err, zk.ErrNoAuth), "read without credentials: %v", err)
	_, err = open.Create(ctx, "/spark/master_status/app_2", []byte("x"), 0)
	assert.True(t, errors.Is(err, zk.ErrNoAuth), "write without credentials: %v", err)
	_, _, err = open.Get(ctx, "/elsewhere")
	assert.NoError(t, err, "nodes outside the directory are left alone")
	data, _, err := owner.Get(ctx, "/spark/master_status/app_1")
	require.NoError(t, err)
	assert.Equal(t, "x", string(data))

	again, err := owner.ApplyACL(ctx, "/spark")
	require.NoError(t, err)
	assert.Empty(t, again)

	// Another credential cannot take the directory over.
	other, _ := connect(t, zkutil.Config{Connect: e.Connect(), Auth: "mallory:pw"})
	_, err = other.ApplyACL(ctx, "/spark")
	assert.True(t, errors.Is(err, zk.ErrNoAuth), "%v", err)
}
