package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
)

// SendQueued sums the kernel send queues (tx_queue in /proc/net/tcp and
// tcp6: bytes written but not yet acknowledged by the peer) of every TCP
// socket with local address addr (host:port): what the kernel holds for a
// server's clients, memory that RSS does not show.
func SendQueued(addr string) (int64, error) {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, err
	}
	suffix := []byte(fmt.Sprintf(":%04X", port))
	var total int64
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		n, err := sumTxQueue(f, suffix)
		if err != nil && !os.IsNotExist(err) {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// sumTxQueue reads one /proc/net/tcp file: "sl local rem st tx:rx ...".
func sumTxQueue(path string, localSuffix []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 5 || !bytes.HasSuffix(fields[1], localSuffix) {
			continue
		}
		tx, _, ok := bytes.Cut(fields[4], []byte{':'})
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(string(tx), 16, 64)
		if err == nil {
			total += v
		}
	}
	return total, sc.Err()
}
