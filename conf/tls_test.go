package conf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spark.ssl.* applies to every service; spark.ssl.<ns>.* overrides it per
// service; a Java keystore is refused with a hint; TLS on without files is
// an error naming the key.
func TestTLSKeys(t *testing.T) {
	dir := home(t, map[string]string{})
	for _, f := range []string{"all.pem", "all-key.pem", "ui.pem", "ca.pem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	opts := "-Dspark.ssl.enabled=true -Dspark.ssl.certChain=" + p("all.pem") + " -Dspark.ssl.privateKey=" + p("all-key.pem") +
		" -Dspark.ssl.trustStore=" + p("ca.pem") + " -Dspark.ssl.rpc.needClientAuth=true -Dspark.ssl.standalone.certChain=" + p("ui.pem") +
		" -Dspark.ssl.rest.enabled=false"
	c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=" + opts)})
	require.NoError(t, err)
	m, err := c.Master()
	require.NoError(t, err)
	assert.Equal(t, TLS{Enabled: true, CertChain: p("all.pem"), PrivateKey: p("all-key.pem"), TrustStore: p("ca.pem"), NeedClientAuth: true}, m.RPCTLS)
	assert.Equal(t, TLS{Enabled: true, CertChain: p("ui.pem"), PrivateKey: p("all-key.pem"), TrustStore: p("ca.pem")}, m.UITLS)
	assert.False(t, m.RESTTLS.Enabled)

	for opts, want := range map[string]string{
		"-Dspark.ssl.enabled=true -Dspark.ssl.keyStore=/x.jks": `conf: spark.ssl.keyStore="/x.jks" (from SPARK_DAEMON_JAVA_OPTS (environment)): sparkd reads PEM files, not a Java keystore`,
		"-Dspark.ssl.rpc.enabled=true":                         `conf: spark.ssl.certChain="" (from default): TLS is on (spark.ssl.rpc.enabled) and needs a PEM file here`,
	} {
		c, err := Load(Options{Role: RoleMaster, Home: dir, Environ: baseEnv("SPARK_DAEMON_JAVA_OPTS=" + opts)})
		require.NoError(t, err)
		_, err = c.Master()
		require.Error(t, err, opts)
		assert.Contains(t, err.Error(), want)
	}
}
