package recovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxRecordSize is the largest encoded record any Store accepts, in bytes.
// ZooKeeper refuses packets over jute.maxbuffer (default 0xfffff, just under
// 1 MiB), and a record travels in a Multi with its path and the epoch check,
// so 8 KiB are kept for framing. FILESYSTEM applies the same limit so that a
// state written in one mode can be moved to another.
const MaxRecordSize = 0xfffff - 8<<10

// ErrBadRecord marks a stored record that cannot be decoded (bad JSON, an
// unknown format, a key that names no record kind, an id that does not
// match its key). Such records are quarantined, never deleted.
var ErrBadRecord = errors.New("recovery: undecodable record")

// ErrBadID is returned for a record id that cannot be used as a key: empty,
// or containing '/', a NUL byte or a control character, or "." / "..".
var ErrBadID = errors.New("recovery: invalid record id")

// Encode validates r (an AppRecord, DriverRecord or WorkerRecord, by value
// or pointer), stamps the current FormatVersion when Format is zero, and
// returns its key and JSON encoding. It refuses records over MaxRecordSize
// with an error wrapping ErrTooLarge.
func Encode(r any) (key string, data []byte, err error) {
	var kind Kind
	var id string
	switch v := r.(type) {
	case AppRecord:
		return Encode(&v)
	case DriverRecord:
		return Encode(&v)
	case WorkerRecord:
		return Encode(&v)
	case *AppRecord:
		if v.Format == 0 {
			v.Format = FormatVersion
		}
		kind, id = KindApp, v.ID
	case *DriverRecord:
		if v.Format == 0 {
			v.Format = FormatVersion
		}
		kind, id = KindDriver, v.ID
	case *WorkerRecord:
		if v.Format == 0 {
			v.Format = FormatVersion
		}
		kind, id = KindWorker, v.ID
	default:
		return "", nil, fmt.Errorf("recovery: encode: unsupported record type %T", r)
	}
	if err := ValidateID(id); err != nil {
		return "", nil, fmt.Errorf("recovery: encode %s record: %w", kind, err)
	}
	key = Key(kind, id)
	data, err = json.Marshal(r)
	if err != nil {
		return "", nil, fmt.Errorf("recovery: encode %s: %w", key, err)
	}
	if len(data) > MaxRecordSize {
		return "", nil, fmt.Errorf("recovery: encode %s: %d bytes exceeds the limit of %d bytes (ZooKeeper jute.maxbuffer): %w",
			key, len(data), MaxRecordSize, ErrTooLarge)
	}
	return key, data, nil
}

// ValidateID checks that id can be part of a key (a znode or file name).
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadID)
	case id == "." || id == "..":
		return fmt.Errorf("%w: %q", ErrBadID, id)
	case len(id) > 512:
		return fmt.Errorf("%w: %d bytes is longer than 512", ErrBadID, len(id))
	}
	for _, c := range id {
		if c == '/' || c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q contains %q", ErrBadID, id, c)
		}
	}
	return nil
}

// ParseKey splits a key into its kind and id. It fails (wrapping
// ErrBadRecord) for a key that names no known kind.
func ParseKey(key string) (Kind, string, error) {
	kind, id, ok := strings.Cut(key, "_")
	if !ok {
		return "", "", fmt.Errorf("%w: key %q has no <kind>_ prefix", ErrBadRecord, key)
	}
	switch Kind(kind) {
	case KindApp, KindDriver, KindWorker:
	default:
		return "", "", fmt.Errorf("%w: key %q: unknown kind %q", ErrBadRecord, key, kind)
	}
	if err := ValidateID(id); err != nil {
		return "", "", fmt.Errorf("%w: key %q: %w", ErrBadRecord, key, err)
	}
	return Kind(kind), id, nil
}

// Decode decodes the record stored under key and appends it to st. Every
// failure wraps ErrBadRecord and names the key and what was wrong. Unknown
// JSON fields are ignored (a newer sparkd may add fields within a format).
// It is safe to call concurrently with distinct st.
func Decode(key string, data []byte, st *State) error {
	kind, id, err := ParseKey(key)
	if err != nil {
		return err
	}
	var (
		format int
		gotID  string
		add    func()
	)
	switch kind {
	case KindApp:
		var r AppRecord
		err = json.Unmarshal(data, &r)
		format, gotID, add = r.Format, r.ID, func() { st.Apps = append(st.Apps, r) }
	case KindDriver:
		var r DriverRecord
		err = json.Unmarshal(data, &r)
		format, gotID, add = r.Format, r.ID, func() { st.Drivers = append(st.Drivers, r) }
	case KindWorker:
		var r WorkerRecord
		err = json.Unmarshal(data, &r)
		format, gotID, add = r.Format, r.ID, func() { st.Workers = append(st.Workers, r) }
	}
	if err != nil {
		// A record of a newer format may not fit this version's types; say so.
		var head struct {
			Format int `json:"format"`
		}
		if json.Unmarshal(data, &head) == nil && head.Format > FormatVersion {
			format = head.Format
		} else {
			return fmt.Errorf("%w: %s: %w", ErrBadRecord, key, err)
		}
	}
	switch {
	case format == 0:
		return fmt.Errorf("%w: %s: missing field \"format\"", ErrBadRecord, key)
	case format < 1 || format > FormatVersion:
		return fmt.Errorf("%w: %s: format %d is not supported (this sparkd reads 1..%d)", ErrBadRecord, key, format, FormatVersion)
	case gotID != id:
		return fmt.Errorf("%w: %s: field \"id\" is %q, want %q", ErrBadRecord, key, gotID, id)
	}
	add()
	return nil
}
