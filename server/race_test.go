//go:build race

package server_test

// raceEnabled: the race detector slows clients several-fold, so load tests
// publish more slowly to keep the healthy clients healthy.
const raceEnabled = true
