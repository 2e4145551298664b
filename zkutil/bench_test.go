package zkutil_test

import (
	"context"
	"testing"
	"time"

	"github.com/sparkd/sparkd/internal/zktest"
	"github.com/sparkd/sparkd/zkutil"
)

// BenchmarkGet measures one Get round trip through the deadline wrapper
// against a local standalone server.
func BenchmarkGet(b *testing.B) {
	e := zktest.Start(b, 1)
	ctx := context.Background()
	c, err := zkutil.Connect(ctx, zkutil.Config{Connect: e.Connect(), SessionTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	if err := c.EnsurePath(ctx, "/bench"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := c.Get(ctx, "/bench"); err != nil {
			b.Fatal(err)
		}
	}
}
