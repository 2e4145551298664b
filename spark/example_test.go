package spark_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sparkd/sparkd/spark"
)

// A driver registers its task functions (in init, so that its executors,
// which are the same program, have them too), creates a Context and runs
// a job: one task per input, results in input order. Here the master is
// local[2] (two tasks at a time in this process); with
// spark://host:7077 the same code runs on the cluster's executors.
func ExampleContext_Run() {
	spark.Register("example.square", func(ctx context.Context, in []byte) ([]byte, error) {
		n, err := strconv.Atoi(string(in))
		if err != nil {
			return nil, fmt.Errorf("not a number: %q", in)
		}
		return []byte(strconv.Itoa(n * n)), nil
	})
	sc, err := spark.NewContext(spark.Config{Master: "local[2]", AppName: "squares", Log: io.Discard,
		Conf: map[string]string{"spark.ui.port": "0"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sc.Close()
	outs, err := sc.Run(context.Background(), "example.square", [][]byte{[]byte("1"), []byte("2"), []byte("3"), []byte("4")})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range outs {
		fmt.Print(string(o), " ")
	}
	fmt.Println()
	// Output: 1 4 9 16
}

// MapReduce maps every partition with a task, then folds the results on
// the driver, in partition order.
func ExampleContext_MapReduce() {
	spark.Register("example.words", func(ctx context.Context, in []byte) ([]byte, error) {
		return []byte(strconv.Itoa(len(strings.Fields(string(in))))), nil
	})
	sc, err := spark.NewContext(spark.Config{Master: "local[*]", Log: io.Discard, Conf: map[string]string{"spark.ui.port": "0"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sc.Close()
	parts := [][]byte{[]byte("to be or"), []byte("not to be"), []byte("that is the question")}
	total, err := sc.MapReduce(context.Background(), "example.words", parts, func(a, b []byte) ([]byte, error) {
		x, _ := strconv.Atoi(string(a))
		y, _ := strconv.Atoi(string(b))
		return []byte(strconv.Itoa(x + y)), nil
	})
	fmt.Println(string(total), err)
	// Output: 10 <nil>
}

// A task that keeps failing fails its job after spark.task.maxFailures
// attempts, with a *TaskError naming the task and its last error.
func ExampleTaskError() {
	spark.Register("example.picky", func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "" {
			return nil, errors.New("empty input")
		}
		return in, nil
	})
	sc, err := spark.NewContext(spark.Config{Master: "local", Log: io.Discard,
		Conf: map[string]string{"spark.ui.port": "0", "spark.task.maxFailures": "3"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sc.Close()
	_, err = sc.Run(context.Background(), "example.picky", [][]byte{[]byte("ok"), nil})
	var te *spark.TaskError
	if errors.As(err, &te) {
		fmt.Printf("task %d failed %d times: %s\n", te.Task, te.Failures, te.LastError)
	}
	// Output: task 1 failed 3 times: empty input
}
