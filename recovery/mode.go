package recovery

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadMode is returned by ParseMode for an unknown recovery mode.
var ErrBadMode = errors.New("recovery: unknown spark.deploy.recoveryMode")

// ParseMode parses spark.deploy.recoveryMode (case-insensitive, like Spark;
// empty means NONE). Spark's ROCKSDB and CUSTOM modes are refused with a
// message saying what to use instead.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(strings.TrimSpace(s))); m {
	case "":
		return ModeNone, nil
	case ModeNone, ModeFilesystem, ModeZooKeeper:
		return m, nil
	case "ROCKSDB":
		return "", fmt.Errorf("%w: %q is not supported by sparkd; use FILESYSTEM (one master) or ZOOKEEPER (standby masters)", ErrBadMode, s)
	case "CUSTOM":
		return "", fmt.Errorf("%w: %q (spark.deploy.recoveryMode.factory) is not supported by sparkd; use NONE, FILESYSTEM or ZOOKEEPER", ErrBadMode, s)
	default:
		return "", fmt.Errorf("%w: %q; want NONE, FILESYSTEM or ZOOKEEPER", ErrBadMode, s)
	}
}
