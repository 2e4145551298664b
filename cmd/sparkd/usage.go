package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// printFlags writes fs's flags the way the README and Spark write them:
// --name for a long flag, -x for a one-letter alias (registered with the
// usage "same as --name", and shown on that flag's line), then the value
// type and the default. Go accepts both -name and --name; only the help
// differs from flag.PrintDefaults, which shows a single dash.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	const aliasPrefix = "same as --"
	isAlias := func(f *flag.Flag) bool { return len(f.Name) == 1 && strings.HasPrefix(f.Usage, aliasPrefix) }
	aliases := map[string][]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if isAlias(f) {
			long := strings.TrimPrefix(f.Usage, aliasPrefix)
			aliases[long] = append(aliases[long], "-"+f.Name)
		}
	})
	fs.VisitAll(func(f *flag.Flag) {
		if isAlias(f) {
			return
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		typ, usage := flag.UnquoteUsage(f)
		if typ == "value" { // keyFlag and other flag.Value types: a string
			typ = "string"
		}
		var b strings.Builder
		b.WriteString("  " + strings.Join(append(aliases[f.Name], dash+f.Name), ", "))
		if typ != "" {
			b.WriteString(" " + typ)
		}
		b.WriteString("\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch d := f.DefValue; {
		case d == "" || d == "false" || d == "0" || d == "0s" || d == "[]":
		case typ == "string":
			fmt.Fprintf(&b, " (default %q)", d)
		default:
			fmt.Fprintf(&b, " (default %s)", d)
		}
		fmt.Fprintln(w, b.String())
	})
}
