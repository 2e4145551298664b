package protocol

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A 400 must name the field as the sender wrote it: not an empty name for
// a body of the wrong kind, not the Go name of an embedded struct.
func TestDecodeBodyNamesFieldsAsSent(t *testing.T) {
	cases := []struct{ body, field, reason string }{
		{``, "body", "is empty"},
		{`{`, "body", "is not valid JSON"},
		{`[]`, "body", "must be a JSON object, got JSON array"},
		{`"x"`, "body", "must be a JSON object, got JSON string"},
		{`{"epoch":"x"}`, "epoch", "has the wrong type"},
		{`{"epoch":1,"executorId":"x"}`, "executorId", "has the wrong type"},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			var v LaunchExecutor
			err := DecodeBody(httptest.NewRequest("POST", "/", strings.NewReader(c.body)), &v)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, c.field, fe.Field)
			assert.Contains(t, fe.Reason, c.reason)
		})
	}
}

func TestJSONFieldPath(t *testing.T) {
	assert.Equal(t, "epoch", jsonFieldPath("Stamp.epoch"))
	assert.Equal(t, "app.name", jsonFieldPath("app.name"))
	assert.Equal(t, "port", jsonFieldPath("port"))
}

// An oversized body was reported as "is not valid JSON: unexpected EOF".
func TestDecodeBodyTooLarge(t *testing.T) {
	body := `{"appId":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	var v LaunchExecutor
	err := DecodeBody(httptest.NewRequest("POST", "/", strings.NewReader(body)), &v)
	var fe *FieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "body", fe.Field)
	assert.Contains(t, fe.Reason, "is larger than")
	// Exactly at the limit still decodes (into a shape without field
	// bounds; CheckBounds then refuses a 4 MiB id).
	ok := `{"appId":"` + strings.Repeat("a", MaxBodyBytes-len(`{"appId":""}`)) + `"}`
	var raw struct {
		AppID json.RawMessage `json:"appId"`
	}
	require.NoError(t, DecodeBody(httptest.NewRequest("POST", "/", strings.NewReader(ok)), &raw))
	err = DecodeMessage(httptest.NewRequest("POST", "/", strings.NewReader(ok)), &v)
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "appId", fe.Field)
}
