package conf

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMasterURLs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"spark://h1:7077", []string{"h1:7077"}},
		{"spark://h1:7077,h2:7078", []string{"h1:7077", "h2:7078"}},
		{"spark://h1:7077,h2", []string{"h1:7077", "h2:7077"}},
		{"spark://h1", []string{"h1:7077"}},
		{"  spark://h1:1 , h2:2 ", []string{"h1:1", "h2:2"}},
		{"spark://h1:7077,spark://h2:7077", []string{"h1:7077", "h2:7077"}},
		{"spark://h1:7077/", []string{"h1:7077"}},
		{"spark://[::1]:7077", []string{"[::1]:7077"}},
		{"spark://[fe80::1],10.0.0.1:9", []string{"[fe80::1]:7077", "10.0.0.1:9"}},
		{"spark://m-1.example.com:65535", []string{"m-1.example.com:65535"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMasterURLs(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseMasterURLsErrors(t *testing.T) {
	for _, in := range []string{
		"", "h1:7077", "http://h1:7077", "mesos://h:5050", "yarn", "local[*]",
		"spark://", "spark://h1,", "spark://,h1", "spark://h1:", "spark://:7077",
		"spark://h1:0", "spark://h1:65536", "spark://h1:x", "spark://h1:+1",
		"spark://::1", "spark://[::1", "spark://[::1]x", "spark://[1.2.3.4]:1", "spark://[nothost]",
		"spark://h 1:7077", "spark://h1:7077/path",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseMasterURLs(in)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
	_, err := ParseMasterURLs("http://h1:7077")
	assert.ErrorContains(t, err, `scheme "http" is not supported`)
}

func TestParseMemoryMB(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"512", 512}, {"512m", 512}, {"512M", 512}, {"512mb", 512}, {"512MB", 512},
		{"2g", 2048}, {"2gb", 2048}, {"1t", 1 << 20}, {"1tb", 1 << 20},
		{"1048576k", 1024}, {"2048kb", 2}, {"1536k", 1}, {"1048576b", 1}, {"0", 0}, {" 4g ", 4096},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMemoryMB(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, in := range []string{"", "g", "-1g", "1.5g", "1x", "1 gib", "99999999999999999999", "9999999p"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := ParseMemoryMB(in)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		unit time.Duration
		want time.Duration
	}{
		{"60", time.Second, time.Minute},
		{"500", time.Millisecond, 500 * time.Millisecond},
		{"60s", time.Millisecond, time.Minute},
		{"500ms", time.Second, 500 * time.Millisecond},
		{"2min", time.Second, 2 * time.Minute},
		{"2m", time.Second, 2 * time.Minute},
		{"1h", time.Second, time.Hour},
		{"1d", time.Second, 24 * time.Hour},
		{"10us", time.Second, 10 * time.Microsecond},
		{"10S", time.Second, 10 * time.Second},
		{"1m30s", time.Second, 90 * time.Second},
		{" 5s ", time.Second, 5 * time.Second},
		{"0", time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in, tt.unit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, in := range []string{"", "s", "-1s", "10 parsecs", "10y", "99999999999d", "99999999999999999999"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := ParseDuration(in, time.Second)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}
