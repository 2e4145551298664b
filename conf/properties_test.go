package conf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Property
	}{
		{"space separated", "spark.master spark://a:7077\n", []Property{{"spark.master", "spark://a:7077", 1}}},
		{"equals", "a=b", []Property{{"a", "b", 1}}},
		{"colon", "a: b", []Property{{"a", "b", 1}}},
		{"blanks around equals", "  a  =  b  ", []Property{{"a", "b  ", 1}}},
		{"tab separated", "a\t\tb", []Property{{"a", "b", 1}}},
		{"blank then separator", "a  :  b", []Property{{"a", "b", 1}}},
		{"second separator is value", "a==b", []Property{{"a", "=b", 1}}},
		{"key only", "a", []Property{{"a", "", 1}}},
		{"key and separator only", "a=", []Property{{"a", "", 1}}},
		{"empty key", "=b", []Property{{"", "b", 1}}},
		{"comments and blanks", "# c\n! c\n\n   # indented\na=1\n", []Property{{"a", "1", 5}}},
		{"hash inside value", "a=b # not a comment", []Property{{"a", "b # not a comment", 1}}},
		{"escaped separator in key", `a\=b\:c\ d=e`, []Property{{"a=b:c d", "e", 1}}},
		{"escapes", `a=\t\n\r\f\\\x`, []Property{{"a", "\t\n\r\f\\x", 1}}},
		{"unicode escape", `a=\u00e9\u4E2D`, []Property{{"a", "é中", 1}}},
		{"surrogate pair", `a=\ud83d\ude00`, []Property{{"a", "😀", 1}}},
		{"utf8 literal", "a=é", []Property{{"a", "é", 1}}},
		{"continuation", "a=one,\\\n    two,\\\n\tthree\nb=2", []Property{{"a", "one,two,three", 1}, {"b", "2", 4}}},
		{"even backslashes do not continue", "a=x\\\\\nb=y", []Property{{"a", `x\`, 1}, {"b", "y", 2}}},
		{"continuation line starting with hash is data", "a=1\\\n#2", []Property{{"a", "1#2", 1}}},
		{"continuation at EOF", "a=1\\", []Property{{"a", "1", 1}}},
		{"CR line ends", "a=1\rb=2\r\nc=3", []Property{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}}},
		{"duplicates kept in order", "a=1\na=2", []Property{{"a", "1", 1}, {"a", "2", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProperties(strings.NewReader(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	for _, in := range []string{`a=\u12`, `a=\uZZZZ`, "ok=1\nb\\u00g0=1"} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseProperties(strings.NewReader(in))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Contains(t, err.Error(), "line ")
		})
	}
}
