//go:build !unix

package fleetsim

import "errors"

// RaiseFileLimit is only implemented on Unix.
func RaiseFileLimit(uint64) (soft, hard uint64, err error) {
	return 0, 0, errors.New("fleetsim: file limits are only raised on Unix")
}
