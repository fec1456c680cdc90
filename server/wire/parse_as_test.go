package wire

import "testing"

// ParseOpAs is ParseOp with a default op and an allowed set (POST
// /publish, /presence): the same validation, the same codes.
func TestParseOpAs(t *testing.T) {
	for _, c := range []struct {
		body, op, code string
	}{
		{`{"topic":"a","data":1,"id":3}`, OpPublish, ""},
		{`{"op":"publish","topic":"a","data":1}`, OpPublish, ""},
		{`{"topic":"a"}`, OpPublish, CodeBadJSON},
		{`{"topic":"bad topic","data":1}`, OpPublish, CodeInvalidTopic},
		{`{"op":"presence","topic":"a"}`, OpPublish, CodeUnknownOp},
		{`{"op":"subscribe","topics":["a"]}`, OpPublish, CodeUnknownOp},
		{`{"topic":`, OpPublish, CodeBadJSON},
		{`[]`, OpPublish, CodeBadJSON},
	} {
		op, err := ParseOpAs([]byte(c.body), OpPublish, OpPublish)
		code := ""
		if err != nil {
			code = err.Code
		}
		if code != c.code || (code == "" && op.Op != c.op) {
			t.Errorf("%s: op %q, error %v; want %q %q", c.body, op.Op, err, c.op, c.code)
		}
	}
	if op, err := ParseOpAs([]byte(`{"op":"presence_stats","topic":"a"}`), OpPresence, OpPresence, OpPresenceStats); err != nil || op.Op != OpPresenceStats {
		t.Errorf("presence_stats: %v %v", op.Op, err)
	}
}

// FuzzParseOpAs: any body gets an op or an error with a code, never a panic.
func FuzzParseOpAs(f *testing.F) {
	for _, s := range []string{`{"topic":"a","data":1}`, `{"op":"presence","topic":"a"}`, `{"topic":"a","data":"\u0000"}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := ParseOpAs(body, OpPublish, OpPublish)
		if err == nil && (op.Op != OpPublish || !ValidTopic(op.Topic) || len(op.Data) == 0) {
			t.Fatalf("%q accepted as %+v", body, op)
		}
		if err != nil && err.Code == "" {
			t.Fatalf("%q: error without a code", body)
		}
	})
}
