// Command wordcount counts the words of its input files on a sparkd
// cluster, one task per chunk, and prints what
//
//	cat FILE... | LC_ALL=C tr -s '[:space:]' '\n' | LC_ALL=C sort | uniq -c
//
// prints: one line per distinct word, in byte order, its count right-aligned
// in 7 columns. A word is a run of bytes other than space, \t, \n, \v, \f
// and \r (the C locale's [:space:]); input that starts with one of them
// counts one empty word, as the pipeline does.
//
//	wordcount --master spark://host:7077 [--chunk 256k] [--output FILE] FILE...
//
// The master defaults to $SPARK_MASTER; "-" reads standard input.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sparkd/sparkd/examples/internal/cli"
	"github.com/sparkd/sparkd/spark"
)

func init() {
	spark.Register("wordcount.count", count)
	spark.Register("wordcount.count-slowly", countSlowly)
}

// countSlowly is count after a pause (--task-delay, for demos and fault
// tests: it leaves time to kill things mid-job). Its input is the delay in
// milliseconds, a newline, and the chunk.
func countSlowly(ctx context.Context, input []byte) ([]byte, error) {
	head, chunk, ok := bytes.Cut(input, []byte("\n"))
	ms, err := strconv.Atoi(string(head))
	if !ok || err != nil || ms < 0 {
		return nil, fmt.Errorf("wordcount.count-slowly: input does not start with a delay in milliseconds: %.20q", input)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Duration(ms) * time.Millisecond):
	}
	return count(ctx, chunk)
}

func isSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// count counts the words of one chunk and returns "word count" lines (a
// word holds no space, so the last space of a line separates them).
func count(ctx context.Context, chunk []byte) ([]byte, error) {
	counts := map[string]int{}
	for _, w := range bytes.FieldsFunc(chunk, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) {
		counts[string(w)]++
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for w, n := range counts {
		fmt.Fprintf(&b, "%s %d\n", w, n)
	}
	return b.Bytes(), nil
}

// chunks splits data into pieces of about size bytes, each ending just
// after a space byte (or at the end), so that no word is cut in two.
func chunks(data []byte, size int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		end := min(size, len(data))
		for end < len(data) && !isSpace(data[end-1]) {
			end++
		}
		out = append(out, data[:end])
		data = data[end:]
	}
	return out
}

func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 1 || n*mult > spark.MaxTaskInput {
		return 0, fmt.Errorf("--chunk %q: want a size from 1 to %d bytes (e.g. 256k)", s, spark.MaxTaskInput)
	}
	return n * mult, nil
}

func main() {
	spark.ServeIfExecutor()
	conf := cli.Conf{}
	master := flag.String("master", os.Getenv("SPARK_MASTER"), "spark://host:port[,host:port] (default $SPARK_MASTER)")
	chunk := flag.String("chunk", "256k", "bytes per task (about; chunks end at a space)")
	output := flag.String("output", "", "write the counts to this file instead of standard output")
	delay := flag.Duration("task-delay", 0, "each task waits this long first (for demos and fault tests)")
	flag.Var(conf, "conf", "a Spark property key=value (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: wordcount [flags] FILE...\n\nCounts words on a sparkd cluster, one task per chunk; prints what\ncat FILE... | LC_ALL=C tr -s '[:space:]' '\\n' | LC_ALL=C sort | uniq -c prints.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	size, err := parseSize(*chunk)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
		os.Exit(2)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "wordcount: no input files (\"-\" reads standard input)")
		os.Exit(2)
	}
	var data []byte
	for _, f := range flag.Args() {
		var b []byte
		if f == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
			os.Exit(2)
		}
		data = append(data, b...)
	}
	sc, err := spark.NewContext(spark.Config{Master: *master, AppName: "Word Count", Conf: conf})
	if err != nil {
		fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
		os.Exit(2)
	}
	code := run(sc, data, size, *delay, *output)
	sc.Close()
	os.Exit(code)
}

func run(sc *spark.Context, data []byte, size int, delay time.Duration, output string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	totals := map[string]int{}
	if len(data) > 0 && isSpace(data[0]) {
		totals[""] = 1 // tr turns the leading run into an empty first line
	}
	if parts := chunks(data, size); len(parts) > 0 {
		fn := "wordcount.count"
		if delay > 0 {
			fn = "wordcount.count-slowly"
			for i, p := range parts {
				parts[i] = append([]byte(strconv.FormatInt(delay.Milliseconds(), 10)+"\n"), p...)
			}
		}
		outs, err := sc.Run(ctx, fn, parts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
			return 1
		}
		for i, o := range outs {
			for _, line := range strings.Split(strings.TrimSuffix(string(o), "\n"), "\n") {
				if line == "" {
					continue
				}
				j := strings.LastIndexByte(line, ' ')
				n, err := strconv.Atoi(line[j+1:])
				if j < 0 || err != nil {
					fmt.Fprintf(os.Stderr, "wordcount: task %d returned a bad line %q\n", i, line)
					return 1
				}
				totals[line[:j]] += n
			}
		}
	}
	words := make([]string, 0, len(totals))
	for w := range totals {
		words = append(words, w)
	}
	sort.Strings(words) // byte order, as LC_ALL=C sort
	out := os.Stdout
	if output != "" {
		f, err := os.Create(output)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	w := bufio.NewWriter(out)
	for _, word := range words {
		fmt.Fprintf(w, "%7d %s\n", totals[word], word)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
		return 1
	}
	if output != "" {
		if err := out.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "wordcount: %v\n", err)
			return 1
		}
	}
	return 0
}
