package protocol

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Bounds of every message field (issue #16): a message that exceeds one is
// refused with a 400 naming the field before anything acts on it (in
// particular before the master writes a record to ZooKeeper, whose nodes
// hold at most ~1 MiB and whose heap holds them all).
const (
	// MaxIDLen bounds ids, names, hosts and URLs: every string field but
	// the free-form ones below.
	MaxIDLen = 1024
	// MaxTextLen bounds free-form strings: command arguments, environment
	// values, messages, exceptions.
	MaxTextLen = 16 << 10
	// MaxListLen bounds every list and map.
	MaxListLen = 4096
	// MaxRecordBytes bounds the JSON of a message that becomes a stored
	// record (a worker, an application, a driver).
	MaxRecordBytes = 256 << 10
)

// textFields are the JSON names of free-form string fields (MaxTextLen);
// elements of lists and values of maps are free-form too.
var textFields = map[string]bool{
	"message": true, "exception": true, "waitingReason": true, "error": true,
}

// CheckBounds walks v (a decoded message) and returns a *FieldError for
// the first string, list or map over its bound, named by its JSON path
// ("app.command[3]", "app.env[JAVA_OPTS]").
func CheckBounds(v any) error {
	return checkValue(reflect.ValueOf(v), "", false)
}

// CheckRecordSize refuses a message whose JSON is over MaxRecordBytes.
func CheckRecordSize(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(raw) > MaxRecordBytes {
		return &FieldError{Field: "body", Reason: fmt.Sprintf("is %d bytes as a record; at most %d are stored", len(raw), MaxRecordBytes)}
	}
	return nil
}

func checkValue(v reflect.Value, path string, text bool) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkValue(v.Elem(), path, text)
	case reflect.String:
		limit := MaxIDLen
		if text || textFields[lastName(path)] {
			limit = MaxTextLen
		}
		if v.Len() > limit {
			return &FieldError{Field: path, Reason: fmt.Sprintf("is %d bytes long; at most %d are allowed", v.Len(), limit)}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // raw bytes: bounded by the body
		}
		if v.Len() > MaxListLen {
			return &FieldError{Field: path, Reason: fmt.Sprintf("has %d entries; at most %d are allowed", v.Len(), MaxListLen)}
		}
		for i := 0; i < v.Len(); i++ {
			if err := checkValue(v.Index(i), fmt.Sprintf("%s[%d]", path, i), true); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Len() > MaxListLen {
			return &FieldError{Field: path, Reason: fmt.Sprintf("has %d entries; at most %d are allowed", v.Len(), MaxListLen)}
		}
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			ks := fmt.Sprint(k.Interface())
			if k.Kind() == reflect.String && k.Len() > MaxIDLen {
				return &FieldError{Field: path, Reason: fmt.Sprintf("has a key %d bytes long; at most %d are allowed", k.Len(), MaxIDLen)}
			}
			if err := checkValue(it.Value(), path+"["+ks+"]", true); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			p := path
			switch {
			case f.Anonymous && name == "": // embedded (Stamp): flattened on the wire
			case name == "":
				p = join(path, f.Name)
			default:
				p = join(path, name)
			}
			if err := checkValue(v.Field(i), p, false); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func lastName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
