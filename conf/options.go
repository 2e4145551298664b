package conf

import (
	"fmt"
	"strings"
	"unicode"
)

// SplitOptions splits a JVM option string such as SPARK_DAEMON_JAVA_OPTS into
// words with the quoting rules of Spark's launcher (CommandBuilderUtils.
// parseOptionString): words are separated by whitespace; single quotes keep
// everything literally; double quotes keep whitespace and single quotes; a
// backslash outside single quotes takes the next character literally. Quotes
// may appear mid-word: -Dspark.deploy.zookeeper.url="zk1:2181,zk2:2181" is one
// word without the quotes. No variable expansion happens (bash already did
// it when spark-env.sh was sourced). An unterminated quote or a trailing
// backslash is an ErrSyntax.
func SplitOptions(s string) ([]string, error) {
	var (
		words       []string
		cur         strings.Builder
		inWord      bool
		single, dbl bool
		escapeNext  bool
	)
	for _, c := range s {
		switch {
		case escapeNext:
			cur.WriteRune(c)
			escapeNext = false
			inWord = true
		case single:
			if c == '\'' {
				single = false
			} else {
				cur.WriteRune(c)
			}
		case c == '\\':
			escapeNext = true
			inWord = true
		case dbl:
			if c == '"' {
				dbl = false
			} else {
				cur.WriteRune(c)
			}
		case c == '\'':
			single, inWord = true, true
		case c == '"':
			dbl, inWord = true, true
		case unicode.IsSpace(c):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	switch {
	case single:
		return nil, fmt.Errorf("%w: unterminated single quote in %q", ErrSyntax, s)
	case dbl:
		return nil, fmt.Errorf("%w: unterminated double quote in %q", ErrSyntax, s)
	case escapeNext:
		return nil, fmt.Errorf("%w: trailing backslash in %q", ErrSyntax, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ParseJavaOpts returns the -Dspark.*=value properties of a JVM option
// string, in order (a later duplicate wins when the caller applies them).
// Like SparkConf, which only picks up system properties named spark.*, it
// ignores every other word (-Xmx1g, -XX:..., -Dlog4j...=...) and reports each
// to ignored, which may be nil. "-Dspark.x" without "=" sets the empty string,
// as the JVM does.
func ParseJavaOpts(s string, ignored func(word string)) ([]Property, error) {
	words, err := SplitOptions(s)
	if err != nil {
		return nil, err
	}
	var out []Property
	for _, w := range words {
		kv, ok := strings.CutPrefix(w, "-D")
		k, v, _ := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "spark.") {
			if ignored != nil {
				ignored(w)
			}
			continue
		}
		out = append(out, Property{Key: k, Value: v})
	}
	return out, nil
}
