package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/server/auth"
	"github.com/fanwire/fanwire/server/namespace"
)

// BenchmarkInBandPublish is a client's {"op":"publish"} on the loop: parse,
// permission check, publish (seq, encode once, history), the ack, and the
// drain to the one subscriber (the sender). allocs/op is per client publish.
func BenchmarkInBandPublish(b *testing.B) {
	for _, stamp := range []bool{false, true} {
		name := "plain"
		if stamp {
			name = "stamp_sender"
		}
		b.Run(name, func(b *testing.B) {
			ns := &namespace.Namespace{Name: "chat", Topics: []string{"chat.*"}, Publish: true, StampSender: stamp, History: 100, HistoryTTL: time.Minute}
			cfg := DefaultConfig()
			cfg.PublishLimits.Rate = 1e9 // the bucket is checked, never empty
			cfg.Auth.Namespaces = &namespace.Set{List: []*namespace.Namespace{ns}, Default: &namespace.Namespace{Name: "default", HistoryTTL: time.Minute}}
			n, err := NewNode(cfg)
			if err != nil {
				b.Fatal(err)
			}
			l := newLoop(n, nil)
			fc := &fakeConn{}
			c := &conn{gc: fc, loop: l, phase: phaseOpen}
			c.ident = &auth.Identity{User: "alice", Info: json.RawMessage(`{"name":"Alice"}`), Publish: []string{"chat.*"}}
			l.addConn(c)
			l.subscribe(c, "chat.room1", resume{}, false)
			msg := []byte(`{"op":"publish","topic":"chat.room1","data":{"text":"hello, room","n":1},"id":17}`)
			l.message(c, codec.OpText, msg)
			l.out = l.out[:0]
			l.drain()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l.message(c, codec.OpText, msg)
				if len(l.out) == 0 {
					b.Fatal("no ack")
				}
				l.out = l.out[:0]
				l.drain()
			}
			b.StopTimer()
			if fc.frames != b.N+1 {
				b.Fatalf("delivered %d, want %d", fc.frames, b.N+1)
			}
		})
	}
}
