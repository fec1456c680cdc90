package loadtest

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as a load worker process.
func TestMain(m *testing.M) {
	RunWorkerIfChild()
	os.Exit(m.Run())
}
