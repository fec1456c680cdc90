package loadtest

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"time"
)

// FANWIRE_LOAD_DUMP=<file> makes every loop append, when the run stops,
// one line per connection and per owed redial: where each subscriber was
// (state, topic path index, last seq, messages on its current socket), so a
// loss can be traced to the subscribers that ended behind. Debugging aid.
var dumpPath = os.Getenv("FANWIRE_LOAD_DUMP")

var stateNames = [...]string{"free", "connecting", "handshake", "open", "closing"}

// dump writes the loop's connections and redials (loop goroutine, at stop).
func (l *loop) dump(now int64) {
	if dumpPath == "" {
		return
	}
	b := make([]byte, 0, 64*len(l.conns)+64*len(l.redials))
	for i := range l.conns {
		c := &l.conns[i]
		if c.state == stFree {
			continue
		}
		port := 0
		if sa, err := unix.Getsockname(int(c.fd)); err == nil {
			if a, ok := sa.(*unix.SockaddrInet4); ok {
				port = a.Port
			}
		}
		b = fmt.Appendf(b, "conn loop=%d slot=%d state=%s path=%d hasSeq=%t lastSeq=%d resume=%t tries=%d msgs=%d age=%s port=%d\n",
			l.id, i, stateNames[c.state], c.path, c.hasSeq, c.lastSeq, c.resume, c.tries, c.msgs, time.Duration(now-c.since).Round(time.Millisecond), port)
	}
	b = fmt.Appendf(b, "loop %d last_message_ago=%s\n", l.id, time.Duration(now-l.lastMsg).Round(time.Millisecond))
	for _, r := range l.resets {
		b = append(b, r...)
	}
	for _, r := range l.redials {
		b = fmt.Appendf(b, "redial loop=%d path=%d resume=%t since=%d tries=%d due_in=%s\n",
			l.id, r.path, r.resume, r.since, r.tries, time.Duration(r.at-now).Round(time.Millisecond))
	}
	appendDump(b)
}

// noteReset keeps a line about a reset for the dump: the subscriber's last
// seq before it, the reset's from, whether this socket was a resume and how
// many messages it had before the reset.
func (l *loop) noteReset(c *conn, from uint64, now int64) {
	if dumpPath == "" || len(l.resets) >= 100 {
		return
	}
	l.resets = append(l.resets, fmt.Sprintf("reset loop=%d path=%d hasSeq=%t lastSeq=%d from=%d resume=%t msgs_before=%d socket_age=%s\n",
		l.id, c.path, c.hasSeq, c.lastSeq, from, c.resume, c.msgs, time.Duration(now-c.since).Round(time.Millisecond)))
}

// dumpLine appends one line from the coordinator (e.g. a topic's last seq).
func dumpLine(format string, args ...any) {
	if dumpPath != "" {
		appendDump(fmt.Appendf(nil, format+"\n", args...))
	}
}

// appendDump appends b to the dump file (best effort: it is a debugging aid).
func appendDump(b []byte) {
	f, err := os.OpenFile(dumpPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(b)
}
