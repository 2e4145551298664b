// Package task is the driver side of sparkd's task runtime (Spark's
// TaskSchedulerImpl, TaskSetManager and OutputCommitCoordinator): a job is
// a list of shell commands, run as tasks on the executors the master
// grants the application. Executors (package task/executor) register with
// the driver's task server directly and long-poll it for orders; the
// master never sees a task, so a master failover costs a running job
// nothing.
//
// Scheduler is pure logic with an injected clock: slots (executor cores /
// spark.task.cpus), attempts, spark.task.maxFailures, executor loss,
// speculation (spark.speculation.*), delay scheduling
// (spark.locality.wait). CommitCoordinator and OutputDir commit outputs.
// Driver wires them to HTTP and to the application client's events.
//
// Guaranteed: a task's output is committed (DIR/part-NNNNN) at most once
// and by exactly one attempt, whatever the retries and speculation; a
// part file that exists is complete (written to _temporary, synced,
// renamed); an executor lost with its process, its worker or its
// heartbeats does not count as a task failure (its tasks run again), up
// to Config.MaxExecutorLosses per task; a job fails only through
// maxFailures failed attempts of one task, those losses, the master
// ending the application, or cancellation.
// Not guaranteed: that a task runs only once (a lost executor's task, or
// a speculated one, may have run to completion elsewhere; its output is
// discarded); that a commit survives a power failure (the directory is
// synced once per job: the task runs again with Resume).
package task
