package loadtest

import (
	"os"
	"os/signal"
	"syscall"
)

// stopSignals calls stop on the first SIGINT/SIGTERM (Ctrl-C reaches the
// whole process group, so workers stop cleanly together with the parent).
func stopSignals(stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		stop()
	}()
}
