package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts the profiles SPARKD_CPUPROFILE and SPARKD_MUTEXPROFILE
// name (file prefixes; the pid is appended), for the scale benchmark
// (make bench-scale PROFILE=dir). The returned func writes them; it runs when
// the process exits normally (a SIGKILLed master writes nothing).
func startProfiles() func() {
	var stops []func()
	if p := os.Getenv("SPARKD_CPUPROFILE"); p != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", p, os.Getpid()))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("SPARKD_MUTEXPROFILE"); p != "" {
		runtime.SetMutexProfileFraction(10)
		stops = append(stops, func() {
			if f, err := os.Create(fmt.Sprintf("%s.%d", p, os.Getpid())); err == nil {
				_ = pprof.Lookup("mutex").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
