package conf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitOptions(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"-Xmx1g -Da=b", []string{"-Xmx1g", "-Da=b"}},
		{" \t-Da=b\n  -Dc=d ", []string{"-Da=b", "-Dc=d"}},
		{`-Dspark.deploy.zookeeper.url="zk1:2181,zk2:2181"`, []string{"-Dspark.deploy.zookeeper.url=zk1:2181,zk2:2181"}},
		{`"-Da=b c" -Dd='e f'`, []string{"-Da=b c", "-Dd=e f"}},
		{`-Da='it"s' -Db="it's"`, []string{`-Da=it"s`, `-Db=it's`}},
		{`-Da=b\ c`, []string{"-Da=b c"}},
		{`-Da="x\"y"`, []string{`-Da=x"y`}},
		{`-Da='x\y'`, []string{`-Da=x\y`}},
		{`''`, []string{""}},
		{`a""b`, []string{"ab"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitOptions(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSplitOptionsErrors(t *testing.T) {
	for _, in := range []string{`-Da="b`, `-Da='b`, `-Da=b\`} {
		t.Run(in, func(t *testing.T) {
			_, err := SplitOptions(in)
			assert.ErrorIs(t, err, ErrSyntax)
		})
	}
}

func TestParseJavaOpts(t *testing.T) {
	var ignored []string
	got, err := ParseJavaOpts(`-Xmx1g -Dspark.a=1 -XX:+UseG1GC -Dlog4j.configuration=x -Dspark.b="two words" -Dspark.c -Dspark.a=3 -D=x -D`,
		func(w string) { ignored = append(ignored, w) })
	require.NoError(t, err)
	assert.Equal(t, []Property{{Key: "spark.a", Value: "1"}, {Key: "spark.b", Value: "two words"}, {Key: "spark.c", Value: ""}, {Key: "spark.a", Value: "3"}}, got)
	assert.Equal(t, []string{"-Xmx1g", "-XX:+UseG1GC", "-Dlog4j.configuration=x", "-D=x", "-D"}, ignored)

	_, err = ParseJavaOpts(`-Dspark.a="x`, nil)
	assert.ErrorIs(t, err, ErrSyntax)
}
