package wire

import (
	"encoding/json"
	"strconv"
)

// Client operations (client -> server text messages).
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
)

// Error codes sent in {"type":"error","code":...}.
const (
	CodeBadJSON       = "bad_json"
	CodeUnknownOp     = "unknown_op"
	CodeInvalidTopic  = "invalid_topic"
	CodeMissingTopics = "missing_topics"
	CodeTooManyTopics = "too_many_topics"
)

// Op is a decoded client operation.
type Op struct {
	Op     string   `json:"op"`
	Topics []string `json:"topics"`
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
	if op.Op != OpSubscribe && op.Op != OpUnsubscribe {
		return op, &OpError{CodeUnknownOp, "unknown op " + strconv.Quote(op.Op) + ": want \"subscribe\" or \"unsubscribe\""}
	}
	if len(op.Topics) == 0 {
		return op, &OpError{CodeMissingTopics, "\"topics\" must be a non-empty array of topic names"}
	}
	for _, t := range op.Topics {
		if !ValidTopic(t) {
			return op, &OpError{CodeInvalidTopic, "invalid topic " + strconv.Quote(t) + ": want 1-128 characters of [A-Za-z0-9_.:-]"}
		}
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

// AppendAck appends {"type":"subscribed"|"unsubscribed","topics":[...]}.
func AppendAck(dst []byte, kind string, topics []string) []byte {
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
	return append(dst, "]}"...)
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
