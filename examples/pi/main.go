// Command pi is Spark's SparkPi as a sparkd Go driver: it estimates π by
// Monte Carlo over N slices, one task per slice, and prints
// "Pi is roughly 3.14...".
//
//	pi --master spark://host:7077 [--samples 100000] [--conf key=value]... [SLICES]
//
// The master defaults to $SPARK_MASTER; SLICES to 2, as in SparkPi.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/sparkd/sparkd/examples/internal/cli"
	"github.com/sparkd/sparkd/spark"
)

// slice is one task's input.
type slice struct {
	Index   int `json:"index"`
	Samples int `json:"samples"`
}

func init() { spark.Register("pi.sample", sample) }

// sample throws Samples darts at the unit square and returns how many fell
// inside the quarter circle, as a decimal number. Each slice has its own
// seed, so a retried task returns the same count.
func sample(ctx context.Context, input []byte) ([]byte, error) {
	var s slice
	if err := json.Unmarshal(input, &s); err != nil {
		return nil, fmt.Errorf("pi.sample: bad input %q: %w", input, err)
	}
	r := rand.New(rand.NewPCG(uint64(s.Index), 0x5eed))
	inside := 0
	for i := 0; i < s.Samples; i++ {
		if i%65536 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		x, y := r.Float64()*2-1, r.Float64()*2-1
		if x*x+y*y <= 1 {
			inside++
		}
	}
	return []byte(strconv.Itoa(inside)), nil
}

func main() {
	spark.ServeIfExecutor()
	conf := cli.Conf{}
	master := flag.String("master", os.Getenv("SPARK_MASTER"), "spark://host:port[,host:port] (default $SPARK_MASTER)")
	samples := flag.Int("samples", 100000, "samples per slice")
	flag.Var(conf, "conf", "a Spark property key=value (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: pi [flags] [SLICES]\n\nEstimates Pi by Monte Carlo over SLICES tasks (default 2) on a sparkd cluster.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	slices := 2
	switch flag.NArg() {
	case 0:
	case 1:
		n, err := strconv.Atoi(flag.Arg(0))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "pi: SLICES %q: want a positive integer\n", flag.Arg(0))
			os.Exit(2)
		}
		slices = n
	default:
		fmt.Fprintf(os.Stderr, "pi: want at most one argument (SLICES), got %q\n", flag.Args())
		os.Exit(2)
	}
	if *samples < 1 {
		fmt.Fprintf(os.Stderr, "pi: --samples %d: want a positive integer\n", *samples)
		os.Exit(2)
	}
	sc, err := spark.NewContext(spark.Config{Master: *master, AppName: "Spark Pi", Conf: conf})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pi: %v\n", err)
		os.Exit(2)
	}
	defer sc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	parts := make([][]byte, slices)
	for i := range parts {
		parts[i], _ = json.Marshal(slice{Index: i, Samples: *samples})
	}
	total, err := sc.MapReduce(ctx, "pi.sample", parts, func(a, b []byte) ([]byte, error) {
		x, err := strconv.Atoi(string(a))
		if err != nil {
			return nil, fmt.Errorf("not a count: %q", a)
		}
		y, err := strconv.Atoi(string(b))
		if err != nil {
			return nil, fmt.Errorf("not a count: %q", b)
		}
		return []byte(strconv.Itoa(x + y)), nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pi: %v\n", err)
		sc.Close()
		os.Exit(1)
	}
	inside, _ := strconv.Atoi(string(total))
	fmt.Printf("Pi is roughly %v\n", 4*float64(inside)/float64(slices**samples))
}
