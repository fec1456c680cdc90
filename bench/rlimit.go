package bench

import "syscall"

// openFilesLimit is RLIMIT_NOFILE's soft limit: it bounds connections per process.
func openFilesLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
