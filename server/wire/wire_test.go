package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidTopic(t *testing.T) {
	good := []string{"a", "scores.football", "prices.BTC-USD", "a_b:c", strings.Repeat("x", 128)}
	bad := []string{"", "a b", "a/b", "é", "a,b", "bad$$", strings.Repeat("x", 129)}
	for _, s := range good {
		if !ValidTopic(s) || !ValidTopicBytes([]byte(s)) {
			t.Errorf("ValidTopic(%q) = false, want true", s)
		}
	}
	for _, s := range bad {
		if ValidTopic(s) || ValidTopicBytes([]byte(s)) {
			t.Errorf("ValidTopic(%q) = true, want false", s)
		}
	}
}

func TestEnvelope(t *testing.T) {
	data := []byte(`{"p": [1, 2.5, "x"]}`)
	env := AppendEnvelope(nil, "prices.BTC-USD", 1234567, data)
	if len(env) != EnvelopeSize("prices.BTC-USD", 1234567, data) {
		t.Fatalf("EnvelopeSize mismatch: %d vs %d", len(env), EnvelopeSize("prices.BTC-USD", 1234567, data))
	}
	var got struct {
		Topic string
		Seq   uint64
		Data  json.RawMessage
	}
	if err := json.Unmarshal(env, &got); err != nil {
		t.Fatal(err)
	}
	if got.Topic != "prices.BTC-USD" || got.Seq != 1234567 || string(got.Data) != string(data) {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestParseOp(t *testing.T) {
	cases := []struct {
		in, code string
	}{
		{`{"op":"subscribe","topics":["a","b"]}`, ""},
		{`{"op":"unsubscribe","topics":["a"]}`, ""},
		{`not json`, CodeBadJSON},
		{`{"op":"subscribe","topics":"a"}`, CodeBadJSON},
		{`{"op":"dance","topics":["a"]}`, CodeUnknownOp},
		{`{"op":"subscribe"}`, CodeMissingTopics},
		{`{"op":"subscribe","topics":["ok","bad topic"]}`, CodeInvalidTopic},
	}
	for _, c := range cases {
		_, err := ParseOp([]byte(c.in))
		code := ""
		if err != nil {
			code = err.Code
		}
		if code != c.code {
			t.Errorf("ParseOp(%s) code %q, want %q", c.in, code, c.code)
		}
	}
}

func TestRepliesAreJSON(t *testing.T) {
	for _, b := range [][]byte{
		AppendAck(nil, "subscribed", []string{"a", "b"}, nil),
		AppendAck(nil, "subscribed", []string{"a", "b"}, []string{"e1", "e2"}),
		AppendAck(nil, "unsubscribed", nil, nil),
		AppendSubscribed(nil, []string{"a", "b"}, []string{"e1", "e2"}, []uint64{0, 41}),
		AppendSubscribed(nil, nil, nil, nil),
		AppendReset(nil, "a", 42, "e1"),
		AppendSnapshotTail([]byte(`{"topic":"a","seq":1,"data":1`)),
		AppendConflatedTail([]byte(`{"topic":"a","seq":9,"data":1`), 3, 8),
		AppendError(nil, &OpError{CodeBadJSON, "bad \"quote\" \x01 é"}),
	} {
		if !json.Valid(b) {
			t.Errorf("not valid JSON: %s", b)
		}
	}
}

func BenchmarkAppendEnvelope(b *testing.B) {
	buf := make([]byte, 0, 256)
	data := []byte(`{"symbol":"BTC-USD","price":64012.5,"ts":1732500000000}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendEnvelope(buf[:0], "prices.BTC-USD", uint64(i), data)
	}
}

func TestParseResume(t *testing.T) {
	s, e, err := ParseResume([]string{"a:41,b:7"}, []string{"a:E1"})
	if err != nil || s["a"] != 41 || s["b"] != 7 || e["a"] != "E1" {
		t.Fatalf("got %v %v %v", s, e, err)
	}
	for _, bad := range []string{"a", "a:x", "bad topic:1", "a:-1"} {
		if _, _, err := ParseResume([]string{bad}, nil); err == nil {
			t.Errorf("since %q accepted", bad)
		}
	}
	if _, _, err := ParseResume(nil, []string{"a:"}); err == nil {
		t.Error("empty epoch accepted")
	}
	op, oerr := ParseOp([]byte(`{"op":"subscribe","topics":["a"],"since":{"a":41},"epochs":{"a":"E"}}`))
	if oerr != nil || op.Since["a"] != 41 || op.Epochs["a"] != "E" {
		t.Fatalf("ParseOp with since: %+v %v", op, oerr)
	}
}
