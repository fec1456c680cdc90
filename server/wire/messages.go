package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Client operations (client -> server text messages).
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpRefresh     = "refresh" // {"op":"refresh","token":"<JWT>"}: replaces the connection's token
	// {"op":"publish","topic":T,"data":<JSON>,"id":N[,"ephemeral":true]}
	OpPublish = "publish"
	// {"op":"presence"|"presence_stats","topic":T[,"id":N]}
	OpPresence      = "presence"
	OpPresenceStats = "presence_stats"
)

// Error codes sent in {"type":"error","code":...}.
const (
	CodeBadJSON        = "bad_json"
	CodeUnknownOp      = "unknown_op"
	CodeInvalidTopic   = "invalid_topic"
	CodeMissingTopics  = "missing_topics"
	CodeTooManyTopics  = "too_many_topics"
	CodeForbidden      = "forbidden"       // the connection's token (or lack of one) does not allow the topic
	CodeInvalidToken   = "invalid_token"   // a refresh carried a bad token (auth.CodeInvalidToken)
	CodeTooLarge       = "too_large"       // a client publish over the namespace's max_message
	CodeRateLimited    = "rate_limited"    // over --max-client-rate or --max-client-publish-rate
	CodeBusUnavailable = "bus_unavailable" // worker mode: the publish could not reach the sequencer
	CodeNotEnabled     = "not_enabled"     // the topic's namespace does not offer this (presence, ephemeral)
)

// Op is a decoded client operation. Since and Epochs ask to resume topics:
// deliveries after seq Since[t], if the topic is still in epoch Epochs[t].
type Op struct {
	Op     string            `json:"op"`
	Topics []string          `json:"topics"`
	Since  map[string]uint64 `json:"since,omitempty"`
	Epochs map[string]string `json:"epochs,omitempty"`
	Token  string            `json:"token,omitempty"` // refresh; at the upgrade, ?token=
	Delta  string            `json:"delta,omitempty"` // subscribe: "fossil" asks for deltas (delta.go)
	// publish, presence, presence_stats
	Topic     string          `json:"topic,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	ID        uint64          `json:"id,omitempty"` // the client's correlation number, echoed in the answer
	Ephemeral bool            `json:"ephemeral,omitempty"`
}

// OpError is a rejected client operation: the code and text sent back.
type OpError struct {
	Code    string
	Message string
}

func (e *OpError) Error() string { return e.Code + ": " + e.Message }

// ParseOp decodes and validates a client text message. Each topic is checked;
// the first bad one is named in the error.
func ParseOp(msg []byte) (Op, *OpError) {
	var op Op
	if err := json.Unmarshal(msg, &op); err != nil {
		return op, &OpError{CodeBadJSON, "message is not a JSON object of the form {\"op\":...,\"topics\":[...]}: " + err.Error()}
	}
	return validOp(op)
}

// ParseOpAs parses the body of an HTTP request standing for one op (POST
// /publish, /presence on a fallback transport): the same JSON as the
// in-band op, whose "op" defaults to def and must be one of allowed.
func ParseOpAs(msg []byte, def string, allowed ...string) (Op, *OpError) {
	var op Op
	if err := json.Unmarshal(msg, &op); err != nil {
		return op, &OpError{CodeBadJSON, "body is not a JSON object of the form {\"topic\":...}: " + err.Error()}
	}
	if op.Op == "" {
		op.Op = def
	}
	ok := false
	for _, a := range allowed {
		ok = ok || op.Op == a
	}
	if !ok {
		return op, &OpError{CodeUnknownOp, "op " + strconv.Quote(op.Op) + " is not served here: want " + strings.Join(allowed, " or ")}
	}
	return validOp(op)
}

func validOp(op Op) (Op, *OpError) {
	if op.Op == OpRefresh {
		if op.Token == "" {
			return op, &OpError{CodeInvalidToken, "refresh needs \"token\": a new JWT for the same user"}
		}
		return op, nil
	}
	switch op.Op {
	case OpPublish, OpPresence, OpPresenceStats:
		if !ValidTopic(op.Topic) {
			return op, &OpError{CodeInvalidTopic, "invalid topic " + strconv.Quote(op.Topic) + ": want \"topic\" with 1-128 characters of [A-Za-z0-9_.:-]"}
		}
		if op.Op == OpPublish && len(op.Data) == 0 {
			return op, &OpError{CodeBadJSON, "publish needs \"data\": any JSON value"}
		}
		return op, nil
	case OpSubscribe, OpUnsubscribe:
	default:
		return op, &OpError{CodeUnknownOp, "unknown op " + strconv.Quote(op.Op) + ": want \"subscribe\", \"unsubscribe\", \"refresh\", \"publish\", \"presence\" or \"presence_stats\""}
	}
	if len(op.Topics) == 0 {
		return op, &OpError{CodeMissingTopics, "\"topics\" must be a non-empty array of topic names"}
	}
	for _, t := range op.Topics {
		if !ValidTopic(t) {
			return op, &OpError{CodeInvalidTopic, "invalid topic " + strconv.Quote(t) + ": want 1-128 characters of [A-Za-z0-9_.:-]"}
		}
	}
	if e := validDelta(op.Delta); e != nil {
		return op, e
	}
	return op, nil
}

// AppendEnvelope appends the delivery {"topic":T,"seq":N,"data":D} with data verbatim.
// Topic names need no escaping: their alphabet is checked on the way in.
func AppendEnvelope(dst []byte, topic string, seq uint64, data []byte) []byte {
	dst = append(dst, `{"topic":"`...)
	dst = append(dst, topic...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendEnvelopeFrom is AppendEnvelope with the sender stamp from (a JSON
// object built by the server, see AppendFrom; nil: none). seq 0 is an
// ephemeral message: {"topic":T,"ephemeral":true,"data":D[,"from":F]}.
func AppendEnvelopeFrom(dst []byte, topic string, seq uint64, data, from []byte) []byte {
	dst = append(dst, `{"topic":"`...)
	dst = append(dst, topic...)
	if seq == 0 {
		dst = append(dst, `","ephemeral":true`...)
	} else {
		dst = append(dst, `","seq":`...)
		dst = strconv.AppendUint(dst, seq, 10)
	}
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	if from != nil {
		dst = append(dst, `,"from":`...)
		dst = append(dst, from...)
	}
	return append(dst, '}')
}

// EnvelopeFromSize is the exact length AppendEnvelopeFrom will add.
func EnvelopeFromSize(topic string, seq uint64, data, from []byte) int {
	n := len(`{"topic":"","data":}`) + len(topic) + len(data)
	if seq == 0 {
		n += len(`,"ephemeral":true`)
	} else {
		n += len(`,"seq":`) + decimalLen(seq)
	}
	if from != nil {
		n += len(`,"from":`) + len(from)
	}
	return n
}

// AppendFrom appends the sender stamp {"user":U[,"info":I]}; info is the
// token's fanwire.info (valid JSON, verbatim).
func AppendFrom(dst []byte, user string, info []byte) []byte {
	dst = append(dst, `{"user":`...)
	dst = AppendString(dst, user)
	if len(info) > 0 {
		dst = append(dst, `,"info":`...)
		dst = append(dst, info...)
	}
	return append(dst, '}')
}

// AppendString appends s as a JSON string (escaping what JSON requires,
// plus <, > and & like encoding/json), without allocating.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c) // the verifier only accepts valid UTF-8 JSON
		}
	}
	return append(dst, '"')
}

// AppendPublished appends {"type":"published","id":N,"topic":T,"seq":S}
// (seq 0, an ephemeral message: "ephemeral":true instead of a seq).
func AppendPublished(dst []byte, id uint64, topic string, seq uint64) []byte {
	dst = append(dst, `{"type":"published","id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"topic":"`...)
	dst = append(dst, topic...)
	if seq == 0 {
		return append(dst, `","ephemeral":true}`...)
	}
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendErrorID appends AppendError's object with "id":N, the correlation
// number of the op it answers.
func AppendErrorID(dst []byte, e *OpError, id uint64) []byte {
	dst = AppendError(dst, e)
	dst = append(dst[:len(dst)-1], `,"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, '}')
}

// EnvelopeSize is the exact length AppendEnvelope will add.
func EnvelopeSize(topic string, seq uint64, data []byte) int {
	return len(`{"topic":"","seq":,"data":}`) + len(topic) + decimalLen(seq) + len(data)
}

func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// AppendAck appends {"type":"subscribed"|"unsubscribed","topics":[...]} and,
// when epochs is not nil, "epochs":{"topic":"epoch",...} (epochs[i] is topics[i]'s).
func AppendAck(dst []byte, kind string, topics, epochs []string) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, kind...)
	dst = append(dst, `","topics":[`...)
	for i, t := range topics {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, t...)
		dst = append(dst, '"')
	}
	dst = append(dst, ']')
	if epochs != nil {
		dst = append(dst, `,"epochs":{`...)
		for i, t := range topics {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, t...)
			dst = append(dst, `":"`...)
			dst = append(dst, epochs[i]...)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// AppendSubscribed appends the subscribe ack: AppendAck's, plus
// "seqs":{"topic":N,...}, the seq after which each subscription's live
// deliveries follow its catch-up (so a client that has received nothing yet
// knows where to resume). seqs[i] is topics[i]'s.
func AppendSubscribed(dst []byte, topics, epochs []string, seqs []uint64) []byte {
	dst = AppendAck(dst, "subscribed", topics, epochs)
	dst = append(dst[:len(dst)-1], `,"seqs":{`...)
	for i, t := range topics {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, t...)
		dst = append(dst, `":`...)
		dst = strconv.AppendUint(dst, seqs[i], 10)
	}
	return append(dst, "}}"...)
}

// AppendReset appends {"type":"reset","topic":T,"from":N,"epoch":E}: the
// resume point is gone; deliveries continue from seq N.
func AppendReset(dst []byte, topic string, from uint64, epoch string) []byte {
	dst = append(dst, `{"type":"reset","topic":"`...)
	dst = append(dst, topic...)
	dst = append(dst, `","from":`...)
	dst = strconv.AppendUint(dst, from, 10)
	dst = append(dst, `,"epoch":"`...)
	dst = append(dst, epoch...)
	return append(dst, `"}`...)
}

// AppendSnapshotTail turns an envelope's closing '}' into ,"snapshot":true}.
// Call it with the envelope minus its last byte.
func AppendSnapshotTail(dst []byte) []byte {
	return append(dst, `,"snapshot":true}`...)
}

// AppendConflatedTail closes an envelope as ,"conflated":true,"skipped":[a,b]}:
// seqs a..b of the topic were replaced by this newer message.
func AppendConflatedTail(dst []byte, first, last uint64) []byte {
	dst = append(dst, `,"conflated":true,"skipped":[`...)
	dst = strconv.AppendUint(dst, first, 10)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, last, 10)
	return append(dst, "]}"...)
}

// ParseResume reads the URL form of resume points: since=a:41,b:7 and
// epochs=a:E1,b:E2 (each may repeat).
func ParseResume(since, epochs []string) (map[string]uint64, map[string]string, error) {
	var s map[string]uint64
	var e map[string]string
	for _, v := range since {
		for _, item := range strings.Split(v, ",") {
			name, num, ok := strings.Cut(item, ":")
			seq, err := strconv.ParseUint(num, 10, 64)
			if !ok || err != nil || !ValidTopic(name) {
				return nil, nil, fmt.Errorf("bad since %q: want topic:seq", item)
			}
			if s == nil {
				s = make(map[string]uint64)
			}
			s[name] = seq
		}
	}
	for _, v := range epochs {
		for _, item := range strings.Split(v, ",") {
			name, epoch, ok := strings.Cut(item, ":")
			if !ok || !ValidTopic(name) || epoch == "" {
				return nil, nil, fmt.Errorf("bad epochs %q: want topic:epoch", item)
			}
			if e == nil {
				e = make(map[string]string)
			}
			e[name] = epoch
		}
	}
	return s, e, nil
}

// AppendError appends {"type":"error","code":C,"message":M}.
func AppendError(dst []byte, e *OpError) []byte {
	dst = append(dst, `{"type":"error","code":`...)
	dst = strconv.AppendQuote(dst, e.Code)
	dst = append(dst, `,"message":`...)
	msg, _ := json.Marshal(e.Message) // JSON-escape; strconv.Quote escapes differently
	dst = append(dst, msg...)
	return append(dst, '}')
}

// AppendRefreshed appends {"type":"refreshed","exp":N}: the connection now
// runs on the new token (exp 0: it never expires).
func AppendRefreshed(dst []byte, exp int64) []byte {
	dst = append(dst, `{"type":"refreshed","exp":`...)
	dst = strconv.AppendInt(dst, exp, 10)
	return append(dst, '}')
}
