//go:build !linux

package worker

import "errors"

// waitExited is only implemented on Linux; elsewhere leftovers of a
// process group are not killed when its leader exits.
func waitExited(int) error { return errors.New("waitid: not supported") }
