// Package peer is what every benchmark peer shares: flags, the control HTTP
// API (fanwire's own handler, so the publish contract is byte-identical),
// the topic registry with per-topic seq, and the client-op replies. Only the
// WebSocket side differs between peers; that is the part being compared.
package peer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/server/api"
	"github.com/fanwire/fanwire/server/wire"
)

// Limits shared with fanwire's defaults so no peer does less work.
const (
	MaxMessage = 64 << 10 // client message cap (1009 above it)
	MaxTopics  = 1000     // subscriptions per connection
	SendQueue  = 256      // buffered messages per connection before drop-and-close
	MaxPending = 1 << 20  // unsent bytes per connection (nbio's write buffer cap)
	WritePause = 10 * time.Second
)

// Flags are the command-line settings every peer accepts.
type Flags struct {
	Listen       string
	HTTP         string
	PingInterval time.Duration
	// Compression: negotiate permessage-deflate with clients that offer it
	// (the bandwidth scenario); each peer compresses as its library does.
	Compression bool
}

// ParseFlags reads the peer's flags from os.Args.
func ParseFlags(name string) Flags {
	var f Flags
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:8080", "WebSocket listener address (upgrade at GET /ws)")
	fs.StringVar(&f.HTTP, "http", "127.0.0.1:8081", "control HTTP API address")
	fs.DurationVar(&f.PingInterval, "ping-interval", 30*time.Second, "ping idle connections this often; close after 2 silent intervals")
	fs.BoolVar(&f.Compression, "compression", false, "negotiate permessage-deflate with clients that offer it")
	_ = fs.Parse(os.Args[1:])
	return f
}

// StartControl serves fanwire's control API for pub on addr. It returns once
// the listener is bound, so a harness can poll the port.
func StartControl(addr string, pub api.Publisher) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", api.NewHandler(pub, api.Options{}))
	mux.HandleFunc("GET /debug/heap", serveHeap)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

// serveHeap answers the bench harness's memory probe: live heap and stack
// bytes right after a forced GC (RSS alone also counts uncollected garbage).
func serveHeap(w http.ResponseWriter, _ *http.Request) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"heap_alloc":%d,"heap_inuse":%d,"stack_inuse":%d,"sys":%d,"goroutines":%d}`+"\n",
		m.HeapAlloc, m.HeapInuse, m.StackInuse, m.Sys, runtime.NumGoroutine())
}

// WaitSignal blocks until SIGTERM or SIGINT.
func WaitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	signal.Stop(ch)
}

// Shutdown stops an http.Server within a short grace period.
func Shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Fatal prints err and exits 1.
func Fatal(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}

// URLTopics reads ?topics=a,b (repeatable) exactly as fanwire does.
func URLTopics(rawQuery string) ([]string, error) {
	if rawQuery == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errors.New("bad query string: " + err.Error())
	}
	var topics []string
	for _, v := range q["topics"] {
		for _, t := range strings.Split(v, ",") {
			if t == "" {
				continue
			}
			if !wire.ValidTopic(t) {
				return nil, errors.New("invalid topic " + t + ": want 1-128 characters of [A-Za-z0-9_.:-]")
			}
			topics = append(topics, t)
		}
	}
	if len(topics) > MaxTopics {
		return nil, errors.New("too many topics")
	}
	return topics, nil
}

// CheckPath answers 404 for anything but /ws, as fanwire does.
func CheckPath(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/ws" {
		http.Error(w, "not found: WebSocket endpoint is /ws", http.StatusNotFound)
		return false
	}
	return true
}

// ErrorReply is the {"type":"error",...} text for a rejected client op.
func ErrorReply(e *wire.OpError) []byte { return wire.AppendError(nil, e) }

// AckReply is the {"type":"subscribed"|"unsubscribed",...} text for op.
func AckReply(op wire.Op) []byte {
	kind := "subscribed"
	if op.Op == wire.OpUnsubscribe {
		kind = "unsubscribed"
	}
	return wire.AppendAck(nil, kind, op.Topics, nil) // no epochs: peers have no history
}

// TooManyTopics is the error for a subscribe over MaxTopics.
var TooManyTopics = &wire.OpError{Code: wire.CodeTooManyTopics, Message: "at most 1000 topics per connection"}
