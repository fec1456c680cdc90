package loadtest

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fanwire/fanwire/codec"
)

// Chat mode: U users in R rooms (plus an optional hot room), one WebSocket
// per user, subscribed to its room by URL and publishing to it in-band
// ({"op":"publish","topic":..,"data":{"t":<send ns>,"pad":..},"id":<send ns>}) once
// per interval, phases jittered so users are not in lockstep. Every user
// checks its own deliveries (seq contiguity from 1, duplicates, late
// arrivals); every ack ({"type":"published","seq":S}) raises its room's
// highest acknowledged seq M. At the end each subscriber must hold exactly
// the seqs 1..M of its room: what is missing is lost.
//
// Per-user state lives in per-loop arrays indexed by the user's local
// index k (conn.path), not in conn, so the other modes pay nothing.

// ChatPlan is the room layout and publish schedule; every process gets all
// of it, so room assignment does not depend on how users are split.
type ChatPlan struct {
	Users       int           `json:"users"`     // users in the normal rooms
	Rooms       int           `json:"rooms"`     // normal rooms
	HotUsers    int           `json:"hot_users"` // users in the hot room (global indexes Users...)
	Interval    time.Duration `json:"interval"`  // per-user publish period, normal rooms
	HotInterval time.Duration `json:"hot_interval"`
	Size        int           `json:"size"`   // data bytes ({"t":..,"pad":".."})
	Topics      []string      `json:"topics"` // Rooms normal rooms, then the hot room (if any)
}

// roomOf is the room of the user with global index g.
func (p *ChatPlan) roomOf(g int) int {
	if g < p.Users {
		return g % p.Rooms
	}
	return p.Rooms
}

// members is how many users the layout puts in room r.
func (p *ChatPlan) members(r int) int64 {
	if r == p.Rooms {
		return int64(p.HotUsers)
	}
	n := p.Users / p.Rooms
	if r < p.Users%p.Rooms {
		n++
	}
	return int64(n)
}

// rooms counts the rooms, the hot one included.
func (p *ChatPlan) rooms() int {
	if p.HotUsers > 0 {
		return p.Rooms + 1
	}
	return p.Rooms
}

// chatLoop is one loop's chat state.
type chatLoop struct {
	plan *ChatPlan

	// per local user k
	room []uint32
	slot []int32  // open connection's slot, -1 when not open
	last []uint64 // highest seq received
	seen []uint64 // bit i: seq last-i received (late arrivals vs duplicates)
	got  []uint32 // distinct seqs received
	est  []bool   // ever established: a subscriber whose deliveries count

	// per room
	acks   []int64  // publishes acknowledged here
	maxAck []uint64 // highest acknowledged seq seen here

	scheds   [2]chatSchedule // normal rooms, hot room
	payload  []byte
	lastSent int64

	pubStart, pubEnd atomic.Int64 // unix nanos; 0 = not yet told to publish
}

func newChatLoop(plan *Plan, id, share int) *chatLoop {
	p := plan.Chat
	ch := &chatLoop{
		plan: p,
		room: make([]uint32, share), slot: make([]int32, share),
		last: make([]uint64, share), seen: make([]uint64, share), got: make([]uint32, share),
		est:  make([]bool, share),
		acks: make([]int64, p.rooms()), maxAck: make([]uint64, p.rooms()),
	}
	ch.scheds[0].interval, ch.scheds[1].interval = int64(p.Interval), int64(p.HotInterval)
	for k := range share {
		g := plan.Offset + id + k*plan.Loops
		ch.room[k] = uint32(p.roomOf(g))
		ch.slot[k] = -1
	}
	return ch
}

// chatSchedule fires each of its users once per interval at the user's
// own phase: users sorted by phase, a cursor and a round number.
type chatSchedule struct {
	users    []int32 // local user indexes, by phase
	phase    []int64
	interval int64
	i        int
	round    int64
}

func (s *chatSchedule) next(start int64) int64 {
	return start + s.round*s.interval + s.phase[s.i]
}

// schedule draws every user's phase once publishing starts.
func (l *loop) chatSchedule() {
	ch := l.chat
	type entry struct {
		k     int32
		phase int64
	}
	var es [2][]entry
	for k := range ch.room {
		w := 0
		if int(ch.room[k]) == ch.plan.Rooms {
			w = 1
		}
		es[w] = append(es[w], entry{int32(k), l.rng.Int64N(max(ch.scheds[w].interval, 1))})
	}
	for w := range es {
		slices.SortFunc(es[w], func(a, b entry) int { return int(a.phase - b.phase) })
		for _, e := range es[w] {
			ch.scheds[w].users = append(ch.scheds[w].users, e.k)
			ch.scheds[w].phase = append(ch.scheds[w].phase, e.phase)
		}
	}
}

// chatTick sends the publishes that are due.
func (l *loop) chatTick(now int64) {
	ch := l.chat
	start := ch.pubStart.Load()
	if start == 0 || now < start || l.stopping {
		return
	}
	if ch.scheds[0].users == nil && ch.scheds[1].users == nil {
		l.chatSchedule()
		if ch.scheds[0].users == nil && ch.scheds[1].users == nil {
			ch.pubStart.Store(0) // no users here
			return
		}
	}
	end := ch.pubEnd.Load()
	for w := range ch.scheds {
		s := &ch.scheds[w]
		for len(s.users) > 0 {
			at := s.next(start)
			if at > now || at >= end {
				break
			}
			l.chatPublish(s.users[s.i])
			if s.i++; s.i == len(s.users) {
				s.i, s.round = 0, s.round+1
			}
		}
	}
}

// chatPublish sends one publish from user k, if its connection is open.
func (l *loop) chatPublish(k int32) {
	ch := l.chat
	slot := ch.slot[k]
	if slot < 0 || l.conns[slot].state != stOpen {
		l.stats.pubSkipped.Add(1)
		return
	}
	// The id (the client's correlation number, echoed in the ack) is the
	// send time: unique per user, and the ack's round trip needs no table.
	sent := max(time.Now().UnixNano(), ch.lastSent+1)
	ch.lastSent = sent
	ch.payload = append(ch.payload[:0], `{"op":"publish","topic":"`...)
	ch.payload = append(ch.payload, ch.plan.Topics[ch.room[k]]...)
	ch.payload = append(ch.payload, `","data":`...)
	ch.payload = appendPayload(ch.payload, sent, ch.plan.Size)
	ch.payload = append(ch.payload, `,"id":`...)
	ch.payload = strconv.AppendUint(ch.payload, uint64(sent), 10)
	ch.payload = append(ch.payload, '}')
	l.wbuf = codec.AppendMaskedFrame(l.wbuf[:0], codec.OpText, true, ch.payload, l.maskKey())
	l.stats.pubSent.Add(1)
	l.write(slot, l.wbuf)
}

// chatOpened notes user k's connection as open (and a subscriber).
func (l *loop) chatOpened(c *conn, slot int32) {
	k := c.path
	l.chat.slot[k], l.chat.est[k] = slot, true
	c.hasSeq, c.lastSeq = true, l.chat.last[k] // a reconnect resumes from here
}

// chatClosed forgets the slot of a connection that leaves the open states.
func (l *loop) chatClosed(c *conn, slot int32) {
	if int(c.path) < len(l.chat.slot) && l.chat.slot[c.path] == slot {
		l.chat.slot[c.path] = -1
	}
}

var (
	publishedPrefix = []byte(`{"type":"published"`)
	errorPrefix     = []byte(`{"type":"error"`)
	typePrefix      = []byte(`{"type":`)
	idKey           = []byte(`"id":`)
	codeKey         = []byte(`"code":"`)
)

// chatData handles one server message of user c.path: an ack, an error,
// a delivery, or something else (join/leave, subscribed: ignored).
func (l *loop) chatData(c *conn, f *codec.Frame, now int64) {
	if !f.First {
		return
	}
	ch, k, msg := l.chat, c.path, f.Payload
	switch {
	case bytes.HasPrefix(msg, publishedPrefix):
		seq, _, ok := envelopeFields(msg)
		if !ok {
			return
		}
		r := ch.room[k]
		ch.acks[r]++
		ch.maxAck[r] = max(ch.maxAck[r], seq)
		l.stats.pubAcked.Add(1)
		l.stats.expected.Add(ch.plan.members(int(r)))
		if id, ok := fieldUint(msg, idKey); ok && int64(id) <= now {
			l.stats.recordAck((now - int64(id)) / 1000) // the id is the send time
		}
	case bytes.HasPrefix(msg, errorPrefix):
		code := "unknown"
		if i := bytes.Index(msg, codeKey); i >= 0 {
			rest := msg[i+len(codeKey):]
			if j := bytes.IndexByte(rest, '"'); j > 0 && j <= 32 {
				code = string(rest[:j])
			}
		}
		l.stats.pubError(code)
	case bytes.HasPrefix(msg, resetPrefix):
		l.stats.resets.Add(1)
		if from, ok := resetFrom(msg); ok && from > ch.last[k]+1 {
			l.stats.announced.Add(int64(from - ch.last[k] - 1))
			l.chatAdvance(k, from-1)
		}
	case bytes.HasPrefix(msg, typePrefix):
		// join, leave, subscribed...: not a delivery
	default:
		l.stats.messages.Add(1)
		l.chatTrack(c, msg, now)
	}
}

// chatAdvance moves user k's window up to seq (without receiving it).
func (l *loop) chatAdvance(k uint32, seq uint64) {
	ch := l.chat
	if d := seq - ch.last[k]; d >= 64 {
		ch.seen[k] = 0
	} else {
		ch.seen[k] <<= d
	}
	ch.last[k] = seq
}

// chatTrack checks one delivery's seq: in order, late (out of order, a gap
// counted before is taken back), or a duplicate.
func (l *loop) chatTrack(c *conn, msg []byte, now int64) {
	ch, k := l.chat, c.path
	seq, sent, ok := envelopeFields(msg)
	if !ok {
		return // ephemeral or foreign: not ours to check
	}
	last := ch.last[k]
	switch {
	case seq > last:
		if seq > last+1 {
			l.stats.gaps.Add(int64(seq - last - 1)) // provisional: a late one takes it back
		}
		l.chatAdvance(k, seq)
		ch.seen[k] |= 1
	case last-seq < 64 && ch.seen[k]>>(last-seq)&1 == 0 && seq > 0:
		ch.seen[k] |= 1 << (last - seq)
		l.stats.outOfOrder.Add(1)
		l.stats.gaps.Add(-1)
	default:
		l.stats.dups.Add(1) // the same seq again (or too old to tell)
		return
	}
	ch.got[k]++
	c.lastSeq = ch.last[k]
	if sent > 0 {
		l.stats.recordLatency((now - sent) / 1000)
	}
}

// fieldUint reads the unsigned number after key.
func fieldUint(msg, key []byte) (uint64, bool) {
	i := bytes.Index(msg, key)
	if i < 0 {
		return 0, false
	}
	v, n := parseUint(msg[i+len(key):])
	return v, n > 0
}

// ChatPart is one process's chat outcome: per room what was acknowledged
// here, per established user what it received.
type ChatPart struct {
	Acks     []int64  `json:"acks"`      // per room
	MaxAck   []uint64 `json:"max_ack"`   // per room
	UserRoom []uint32 `json:"user_room"` // per established user
	UserLast []uint64 `json:"user_last"`
	UserGot  []uint32 `json:"user_got"`
}

// chatPart collects the loops' state; call it after they have ended.
func (f *Fleet) chatPart() *ChatPart {
	if f.plan.Chat == nil {
		return nil
	}
	n := f.plan.Chat.rooms()
	p := &ChatPart{Acks: make([]int64, n), MaxAck: make([]uint64, n)}
	for _, l := range f.loops {
		ch := l.chat
		for r := range n {
			p.Acks[r] += ch.acks[r]
			p.MaxAck[r] = max(p.MaxAck[r], ch.maxAck[r])
		}
		for k := range ch.room {
			if ch.est[k] {
				p.UserRoom = append(p.UserRoom, ch.room[k])
				p.UserLast = append(p.UserLast, ch.last[k])
				p.UserGot = append(p.UserGot, ch.got[k])
			}
		}
	}
	return p
}

// StartPublishing tells every loop's users to publish from start to end.
func (f *Fleet) StartPublishing(start, end int64) {
	for _, l := range f.loops {
		if l.chat != nil {
			l.chat.pubEnd.Store(end)
			l.chat.pubStart.Store(start)
		}
	}
}

// ChatResult is the chat outcome of the whole run.
type ChatResult struct {
	Users        int              `json:"users"`
	Rooms        int              `json:"rooms"`
	HotRoomUsers int              `json:"hot_room_users"`
	Subscribers  int64            `json:"subscribers"` // users whose connection was established
	Sent         int64            `json:"publishes_sent"`
	Skipped      int64            `json:"publishes_skipped"` // due while the user's connection was not open
	Acked        int64            `json:"publishes_acked"`
	Errors       int64            `json:"publish_errors"`
	ErrorsBy     map[string]int64 `json:"publish_errors_by,omitempty"` // by error code (rate_limited, forbidden...)
	Unanswered   int64            `json:"publishes_unanswered"`        // sent, neither acked nor refused by the end
	AckedPerSec  float64          `json:"acked_per_s"`                 // over the publishing window
	AckUs        Latency          `json:"ack_rtt_us"`                  // publish sent to its ack
	Expected     int64            `json:"expected"`                    // sum over rooms of subscribers x highest acked seq
	Delivered    int64            `json:"delivered"`                   // distinct acked seqs received
	Lost         int64            `json:"lost"`                        // expected - delivered
	Dups         int64            `json:"dups"`                        // a seq received again
	OutOfOrder   int64            `json:"out_of_order"`                // a seq received after a higher one
	SilentGaps   int64            `json:"silent_gaps"`                 // seqs skipped and never received, seen mid-stream
	SeqsUnacked  int64            `json:"seqs_unacked"`                // seqs below a room's highest ack whose ack never came
	DupAcks      int64            `json:"dup_acks"`                    // more acks than seqs in a room: a seq given twice
	// DeliveredUnacked counts deliveries above their room's highest ack:
	// publishes that took a seq but whose sender was told an error or
	// nothing (e.g. an ack still in flight at the end).
	DeliveredUnacked int64   `json:"delivered_unacked"`
	PerSecond        float64 `json:"deliveries_per_s"`
	LatencyUs        Latency `json:"latency_us"` // send (the "t" in data) to the delivery's arrival
	ServerPID        int     `json:"server_pid,omitempty"`
	ServerProcs      int     `json:"server_processes,omitempty"` // the pid and its descendants
	ServerCPUSec     float64 `json:"server_cpu_s,omitempty"`     // over the publish and drain phases
	PerServerCPUs    float64 `json:"deliveries_per_server_cpu_s,omitempty"`
	ServerCPUErr     string  `json:"server_cpu_error,omitempty"`
	// The generator's own CPU (this process and its workers) over the same
	// window: on a shared box it says whether the generator was the limit.
	GeneratorCPUSec float64 `json:"generator_cpu_s"`
	CPUWindowSec    float64 `json:"cpu_window_s"` // publish start to the end of the drain
}

// chat: ramp every user, publish for --duration, drain, check.
func (r *runner) chat(cfg Config) *ChatResult {
	res := &ChatResult{Users: cfg.Users, Rooms: cfg.Rooms, HotRoomUsers: cfg.HotRoomUsers, ServerPID: cfg.ServerPID}
	p := r.watch("connect", rampTimeout(cfg), rampDone, nil)
	if r.ctx.Err() != nil || p.Established == 0 {
		return res
	}
	cpu, gen := startServerCPU(cfg.ServerPID), startServerCPU(os.Getpid())
	start := time.Now().Add(100 * time.Millisecond)
	end := start.Add(cfg.Duration)
	r.g.publish(start.UnixNano(), end.UnixNano())
	r.watch("publish", time.Until(end)+50*time.Millisecond, nil, nil)
	pubDone := time.Now()
	p = r.watch("drain", cfg.Drain, func(p Progress) bool {
		return p.PubAcked+p.PubErrors >= p.PubSent && p.Messages-p.Dups >= p.Expected
	}, nil)
	res.AckedPerSec = float64(p.PubAcked) / pubDone.Sub(start).Seconds()
	res.PerSecond = float64(p.Messages-p.Dups) / time.Since(start).Seconds()
	res.CPUWindowSec = round3(time.Since(start).Seconds())
	cpu.finish(res, gen)
	return res
}

// finishChat checks every subscriber against its room's acknowledged seqs.
func finishChat(res *ChatResult, parts []PartResult, m merged) {
	c := m.counters
	res.Sent, res.Skipped, res.Acked, res.Errors = c.PubSent, c.PubSkipped, c.PubAcked, c.PubErrors
	res.ErrorsBy = c.PubErrBy
	res.Unanswered = max(0, c.PubSent-c.PubAcked-c.PubErrors)
	res.Dups, res.OutOfOrder, res.SilentGaps = c.Dups, c.OutOfOrder, max(0, c.Gaps)
	res.LatencyUs, res.AckUs = summarize(m.latency), summarize(m.ack)
	var acks []int64
	var maxAck []uint64
	for _, p := range parts {
		if p.Chat == nil {
			continue
		}
		if acks == nil {
			acks, maxAck = make([]int64, len(p.Chat.Acks)), make([]uint64, len(p.Chat.Acks))
		}
		for r := range min(len(acks), len(p.Chat.Acks), len(p.Chat.MaxAck)) {
			acks[r] += p.Chat.Acks[r]
			maxAck[r] = max(maxAck[r], p.Chat.MaxAck[r])
		}
	}
	for r := range acks {
		if d := int64(maxAck[r]) - acks[r]; d > 0 {
			res.SeqsUnacked += d
		} else {
			res.DupAcks -= d
		}
	}
	for _, p := range parts {
		if p.Chat == nil {
			continue
		}
		u := p.Chat
		for i := range min(len(u.UserRoom), len(u.UserLast), len(u.UserGot)) {
			r := int(u.UserRoom[i])
			if r >= len(maxAck) {
				continue
			}
			want := int64(maxAck[r])
			got := int64(u.UserGot[i])
			if above := int64(u.UserLast[i]) - want; above > 0 {
				got -= above // deliveries of publishes whose ack never came
				res.DeliveredUnacked += above
			}
			res.Subscribers++
			res.Expected += want
			res.Delivered += min(got, want)
		}
	}
	res.Lost = res.Expected - res.Delivered
	if res.ServerCPUSec > 0 {
		res.PerServerCPUs = float64(res.Delivered) / res.ServerCPUSec
	}
}

// chatPlan lays out the rooms: users 0..U-1 in room g%R, then the hot room.
// Subscriptions are by URL, so each exists before the 101 and the topics
// are fresh (seq 1 is the first publish) under a prefix unique to the run.
func chatPlan(cfg *Config, p Plan, u *url.URL) (Plan, []string, []int64, error) {
	prefix := cfg.TopicPrefix
	if prefix == "" {
		prefix = "chat.load"
	}
	prefix = fmt.Sprintf("%s.%d", prefix, time.Now().UnixNano()%1e9)
	cfg.TopicPrefix = prefix
	hot := cfg.HotPublishInterval
	if hot <= 0 {
		hot = cfg.PublishInterval
	}
	cfg.HotPublishInterval = hot
	rooms := cfg.Rooms
	if cfg.Users == 0 {
		rooms = 0
	}
	cp := &ChatPlan{Users: cfg.Users, Rooms: max(rooms, 1), HotUsers: cfg.HotRoomUsers,
		Interval: cfg.PublishInterval, HotInterval: hot, Size: cfg.Size}
	if cfg.Users == 0 {
		cp.Rooms = 0 // only the hot room: roomOf(g) is always Rooms
	}
	for r := range cp.Rooms {
		cp.Topics = append(cp.Topics, fmt.Sprintf("%s.room-%d", prefix, r))
	}
	if cp.HotUsers > 0 {
		cp.Topics = append(cp.Topics, prefix+".hot")
	}
	for _, t := range cp.Topics {
		q := u.Query()
		q.Set("topics", t)
		v := *u
		v.RawQuery = q.Encode()
		p.Paths = append(p.Paths, v.RequestURI())
	}
	p.Chat = cp
	p.TrackSeq = true
	return p, nil, nil, nil
}

// problems are the chat outcome's reasons for exit status 1.
func (ch *ChatResult) problems(maxLoss float64) []string {
	var out []string
	if ch.Expected > 0 && float64(ch.Lost)/float64(ch.Expected) > maxLoss {
		out = append(out, fmt.Sprintf("lost %d of %d acknowledged deliveries", ch.Lost, ch.Expected))
	}
	if ch.Dups > 0 {
		out = append(out, fmt.Sprintf("%d duplicate deliveries", ch.Dups))
	}
	if ch.OutOfOrder > 0 {
		out = append(out, fmt.Sprintf("%d deliveries out of seq order", ch.OutOfOrder))
	}
	if ch.DupAcks > 0 {
		out = append(out, fmt.Sprintf("%d acks beyond the highest acked seq of their room: a seq given twice", ch.DupAcks))
	}
	if ch.Errors > 0 {
		out = append(out, fmt.Sprintf("%d publishes refused (%s)", ch.Errors, formatMap(ch.ErrorsBy)))
	}
	if ch.Unanswered > 0 {
		out = append(out, fmt.Sprintf("%d publishes neither acked nor refused", ch.Unanswered))
	}
	if ch.Acked == 0 {
		out = append(out, "no publish was acknowledged (does the topics' namespace allow client publish? see --help)")
	}
	return out
}

func (ch *ChatResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "  rooms:       %d users in %d rooms, hot room %d users; %d subscribers established\n",
		ch.Users, ch.Rooms, ch.HotRoomUsers, ch.Subscribers)
	fmt.Fprintf(w, "  published:   sent %d, acked %d (%.0f/s), refused %d, unanswered %d, skipped (not open) %d\n",
		ch.Sent, ch.Acked, ch.AckedPerSec, ch.Errors, ch.Unanswered, ch.Skipped)
	if len(ch.ErrorsBy) > 0 {
		fmt.Fprintf(w, "  refused by code: %s\n", formatMap(ch.ErrorsBy))
	}
	fmt.Fprintf(w, "  ack round trip: %s\n", ch.AckUs)
	fmt.Fprintf(w, "  delivered:   %d of %d acked (%.0f/s), lost %d, dups %d, out of order %d, silent gaps %d; seqs without an ack: %d below a room's highest ack, %d deliveries above it\n",
		ch.Delivered, ch.Expected, ch.PerSecond, ch.Lost, ch.Dups, ch.OutOfOrder, ch.SilentGaps, ch.SeqsUnacked, ch.DeliveredUnacked)
	fmt.Fprintf(w, "  delivery latency: %s\n", ch.LatencyUs)
	switch {
	case ch.ServerCPUErr != "":
		fmt.Fprintf(w, "  server CPU: %s\n", ch.ServerCPUErr)
	case ch.ServerPID > 0:
		fmt.Fprintf(w, "  server CPU: %.2f s in %d process(es) (pid %d and descendants) over %.1f s: %.0f deliveries per server CPU-second\n",
			ch.ServerCPUSec, ch.ServerProcs, ch.ServerPID, ch.CPUWindowSec, ch.PerServerCPUs)
	default:
		fmt.Fprintln(w, "  server CPU: not measured (--server-pid)")
	}
	fmt.Fprintf(w, "  generator CPU: %.2f s over %.1f s (%.0f%% of one core)\n",
		ch.GeneratorCPUSec, ch.CPUWindowSec, 100*ch.GeneratorCPUSec/max(ch.CPUWindowSec, 1e-9))
}
