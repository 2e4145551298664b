package conf

import (
	"strings"
	"testing"
)

// Run one for longer with e.g.: go test ./conf -run '^$' -fuzz FuzzParseProperties -fuzztime 30s

// escapeProperty writes s so that ParseProperties reads it back unchanged.
func escapeProperty(s string, key bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\f':
			b.WriteString(`\f`)
		case key && (c == '=' || c == ':' || c == ' ' || c == '#' || c == '!'):
			b.WriteByte('\\')
			b.WriteByte(c)
		case !key && i == 0 && (c == ' ' || c == '=' || c == ':'):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{
		"a=b", "a b", "a:b", "# c\n! c\na = b \\\n  c\n", `a\=b\:c\ d=e\t\n\u00e9`, `\ud83d\ude00=x`,
		"a=\\u12", "a\rb\r\nc\n", "key\\", "\\\\\\", "=", ":", " \t\f", "a=\\\n", "\xff\xfe=\x00",
		"spark.deploy.zookeeper.url zk1:2181,\\\n   zk2:2181\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		props, err := ParseProperties(strings.NewReader(in))
		if err != nil {
			return
		}
		// Round trip: what was read, written escaped, reads back the same.
		var b strings.Builder
		for _, p := range props {
			b.WriteString(escapeProperty(p.Key, true) + "=" + escapeProperty(p.Value, false) + "\n")
		}
		again, err := ParseProperties(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-reading %q: %v", b.String(), err)
		}
		if len(again) != len(props) {
			t.Fatalf("re-read %d properties, want %d", len(again), len(props))
		}
		for i := range props {
			if again[i].Key != props[i].Key || again[i].Value != props[i].Value {
				t.Fatalf("round trip %q=%q became %q=%q", props[i].Key, props[i].Value, again[i].Key, again[i].Value)
			}
		}
	})
}

func FuzzSplitOptions(f *testing.F) {
	for _, s := range []string{
		"", "-Xmx1g -Da=b", `-Dspark.deploy.zookeeper.url="zk1:2181,zk2:2181"`, `"-Da=b c" -Dd='e f'`,
		`-Da=b\ c`, `'it"s'`, `"x\"y"`, `a""b`, `-Da="b`, `\`, "\xff -D\x00=\t", "'\\''",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		words, err := SplitOptions(in)
		if err != nil {
			return
		}
		if _, err := ParseJavaOpts(in, func(string) {}); err != nil {
			t.Fatalf("ParseJavaOpts failed where SplitOptions did not: %v", err)
		}
		// Round trip: single-quoting each word and joining gives the words back.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := SplitOptions(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("re-splitting: %v", err)
		}
		if len(again) != len(words) {
			t.Fatalf("re-split %q into %d words, want %d", words, len(again), len(words))
		}
		for i := range words {
			if again[i] != words[i] {
				t.Fatalf("word %d: %q became %q", i, words[i], again[i])
			}
		}
	})
}

func FuzzParseMasterURLs(f *testing.F) {
	for _, s := range []string{
		"spark://h1:7077,h2:7077", "spark://h1", "spark://[::1]:7077,h2", "spark://h1:7077,spark://h2/",
		"http://h1", "spark://", "spark://h1:0", "spark://[::1", "spark://::1", "spark://h1:99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		addrs, err := ParseMasterURLs(in)
		if err != nil {
			return
		}
		if len(addrs) == 0 {
			t.Fatal("no error and no address")
		}
		again, err := ParseMasterURLs("spark://" + strings.Join(addrs, ","))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", addrs, err)
		}
		if strings.Join(again, ",") != strings.Join(addrs, ",") {
			t.Fatalf("%q re-parsed as %q", addrs, again)
		}
	})
}
