package master

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SPARK_PUBLIC_DNS names the host for UI links only: two masters behind the
// same public name must still advertise distinct spark:// URLs and ids.
func TestPublicDNSOnlyInUILinks(t *testing.T) {
	cfg := testConfig()
	cfg.PublicDNS = "spark.example.org"
	cfg.RESTEnabled, cfg.RESTPort = true, 0
	tm := startMaster(t, cfg, nil)
	assert.True(t, strings.HasPrefix(tm.URL(), "spark://127.0.0.1:"), tm.URL())
	assert.True(t, strings.HasPrefix(tm.ID(), "master-") && strings.Contains(tm.ID(), "-127.0.0.1-"), tm.ID())
	v := tm.View()
	assert.True(t, strings.HasPrefix(v.WebUIURL, "http://spark.example.org:"), v.WebUIURL)
	require.NotEmpty(t, v.RESTURL)
	assert.True(t, strings.HasPrefix(v.RESTURL, "spark://127.0.0.1:"), v.RESTURL)
}
