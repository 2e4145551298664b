package conf

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Property is one key/value pair of a properties file; Line is the line its
// logical line starts on (1-based).
type Property struct {
	Key, Value string
	Line       int
}

// ParseProperties reads Java properties syntax, as java.util.Properties.load
// does (UTF-8, as Spark reads spark-defaults.conf):
//   - "key value", "key=value" and "key: value"; whitespace around the
//     separator is skipped; a key may contain escaped separators ("a\=b");
//   - lines whose first non-blank character is # or ! are comments;
//   - a line ending in an odd number of backslashes continues on the next
//     line, whose leading whitespace is dropped;
//   - escapes \t \n \r \f \uXXXX, and backslash before any other character
//     stands for that character.
//
// Later duplicates are returned too (the caller's last one wins). Values are
// not trimmed at the end; Spark trims them, and so does Load. A malformed
// \uXXXX escape is an ErrSyntax naming the line.
func ParseProperties(r io.Reader) ([]Property, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	sc.Split(scanPropertyLines)
	var (
		out       []Property
		logical   strings.Builder
		startLine int
		lineNo    int
		cont      bool
	)
	for sc.Scan() {
		lineNo++
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if !cont {
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
			startLine = lineNo
			logical.Reset()
		}
		// Count trailing backslashes: odd means a continuation.
		n := 0
		for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
			n++
		}
		if n%2 == 1 {
			logical.WriteString(line[:len(line)-1])
			cont = true
			continue
		}
		logical.WriteString(line)
		cont = false
		p, err := parsePropertyLine(logical.String())
		if err != nil {
			return out, fmt.Errorf("%w: line %d: %w", ErrSyntax, startLine, err)
		}
		p.Line = startLine
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%w: line %d: %w", ErrSyntax, lineNo+1, err)
	}
	if cont {
		// Java keeps a key/value cut short by end of input.
		p, err := parsePropertyLine(logical.String())
		if err != nil {
			return out, fmt.Errorf("%w: line %d: %w", ErrSyntax, startLine, err)
		}
		p.Line = startLine
		out = append(out, p)
	}
	return out, nil
}

// scanPropertyLines splits on \n, \r and \r\n, as Java's LineReader does.
func scanPropertyLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // need one more byte to see \r\n
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parsePropertyLine splits one logical line (leading blanks removed,
// continuations joined) into key and value and unescapes both.
func parsePropertyLine(s string) (Property, error) {
	keyEnd := len(s)
	valStart := len(s)
	hasSep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++ // skip the escaped character
			continue
		}
		if c == '=' || c == ':' {
			keyEnd, valStart, hasSep = i, i+1, true
			break
		}
		if c == ' ' || c == '\t' || c == '\f' {
			keyEnd, valStart = i, i+1
			break
		}
	}
	// Skip blanks, then at most one separator if the key ended on a blank.
	for valStart < len(s) {
		c := s[valStart]
		if c == ' ' || c == '\t' || c == '\f' {
			valStart++
			continue
		}
		if !hasSep && (c == '=' || c == ':') {
			valStart++
			hasSep = true
			continue
		}
		break
	}
	if keyEnd > len(s) {
		keyEnd = len(s)
	}
	key, err := unescapeProperty(s[:keyEnd])
	if err != nil {
		return Property{}, err
	}
	val, err := unescapeProperty(s[valStart:])
	if err != nil {
		return Property{}, err
	}
	return Property{Key: key, Value: val}, nil
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break // a lone trailing backslash is dropped
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, ok := hex4(s[i+1:])
			if !ok {
				end := min(i+5, len(s))
				return "", fmt.Errorf("malformed \\uxxxx escape %q", s[i-1:end])
			}
			i += 4
			// A surrogate pair arrives as two escapes.
			if r >= 0xD800 && r < 0xDC00 && strings.HasPrefix(s[i+1:], `\u`) {
				if lo, ok := hex4(s[i+3:]); ok && lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			b.WriteRune(r)
		default:
			// Backslash before any other byte stands for that byte; copy the
			// whole UTF-8 sequence unchanged.
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for j := 0; j < 4; j++ {
		h := s[j]
		switch {
		case h >= '0' && h <= '9':
			r = r<<4 | rune(h-'0')
		case h >= 'a' && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case h >= 'A' && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
