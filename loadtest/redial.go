package loadtest

import (
	"bytes"
	"strconv"
	"time"
)

// redialQueue is a min-heap of redials by due time: reconnect hints and
// Retry-After make them come due in another order than they were queued.
type redialQueue []redial

func (q *redialQueue) push(r redial) {
	*q = append(*q, r)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

// pop removes and returns the earliest; the queue must not be empty.
func (q *redialQueue) pop() redial {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		m, a, b := i, 2*i+1, 2*i+2
		if a < len(h) && h[a].at < h[m].at {
			m = a
		}
		if b < len(h) && h[b].at < h[m].at {
			m = b
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// maxHint bounds a server's reconnect hint and Retry-After as we honour
// them, so a broken value cannot park a connection for the rest of a run.
const maxHint = time.Minute

// reconnectHint reads "reconnect in Nms" from a close reason (fanwire's
// 1001 on shutdown); -1 without one.
func reconnectHint(reason []byte) time.Duration {
	const mark = "reconnect in "
	i := bytes.Index(reason, []byte(mark))
	if i < 0 {
		return -1
	}
	rest := reason[i+len(mark):]
	j := bytes.Index(rest, []byte("ms"))
	if j <= 0 {
		return -1
	}
	ms, err := strconv.ParseUint(string(rest[:j]), 10, 32)
	if err != nil {
		return -1
	}
	return min(time.Duration(ms)*time.Millisecond, maxHint)
}

// retryAfter reads a Retry-After header (delay in seconds) from an HTTP
// response head; 0 without one.
func retryAfter(resp []byte) time.Duration {
	head := resp
	if end := bytes.Index(resp, []byte("\r\n\r\n")); end >= 0 {
		head = resp[:end]
	}
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("Retry-After")) {
			continue
		}
		s, err := strconv.ParseUint(string(bytes.TrimSpace(value)), 10, 32)
		if err != nil {
			return 0
		}
		return min(time.Duration(s)*time.Second, maxHint)
	}
	return 0
}
