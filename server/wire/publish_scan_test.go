package wire

import (
	"bytes"
	"testing"
)

var scanSeeds = []string{
	`{"op":"publish","topic":"chat.room1","data":{"text":"hello, room","n":1},"id":17}`,
	` { "op" : "publish" , "topic" : "a" , "data" : [1, -2.5e3, "x\u00e9\n", true, false, null, {}] , "ephemeral" : true } `,
	`{"data":"x","topic":"a","op":"publish"}`,
	`{"op":"publish","topic":"a","data":0,"id":18446744073709551615}`,
	"{\"op\":\"publish\",\"topic\":\"a\",\"data\":\"\xff\xfe\"}", // invalid UTF-8 is kept raw, as json does
	// left to ParseOp:
	`{"op":"publish","topic":"a","data":1,"id":18446744073709551616}`,
	`{"op":"publish","topic":"a","data":null}`,
	`{"op":"publish","topic":"a"}`,
	`{"OP":"publish","topic":"a","data":1}`,
	`{"op":"publish","topic":"a","data":1,"data":2}`,
	`{"op":"publish","topic":"a b","data":1}`,
	`{"op":"publish","topic":"\u0061","data":1}`,
	`{"op":"publish","topic":"a","data":01}`,
	`{"op":"publish","topic":"a","data":1,}`,
	`{"op":"publish","topic":"a","data":1} x`,
	`{"op":"publish","topic":"a","data":1,"id":-1}`,
	`{"op":"publish","topic":"a","data":1,"id":1.0}`,
	`{"op":"publish","topic":"a","data":1,"ephemeral":null}`,
	`{"op":"subscribe","topics":["a"]}`,
	"{\"op\":\"publish\",\"topic\":\"a\",\"data\":\"\x01\"}",
	`{"op":"publish","topic":"a","data":"\x01"}`,
	`{"op":"publish","topic":"a","data":"\q"}`,
	`{"op":"publish","topic":"a","data":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`{"op":"publish","topic":"a","data":{"k":1,"k":2},"extra":1}`,
	`[]`, ``, `{`, `nul`,
}

// Whatever the fast scan accepts, ParseOp accepts too, with the same Op.
func FuzzScanPublish(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkScan(t, msg)
	})
}

func checkScan(t *testing.T, msg []byte) bool {
	t.Helper()
	got, ok := ScanPublish(msg, nil)
	if !ok {
		return false
	}
	want, err := ParseOp(msg)
	if err != nil {
		t.Fatalf("%q: the scan accepted what ParseOp refuses: %v", msg, err)
	}
	if got.Op != want.Op || got.Topic != want.Topic || !bytes.Equal(got.Data, want.Data) || got.ID != want.ID ||
		got.Ephemeral != want.Ephemeral || want.Topics != nil || want.Since != nil || want.Epochs != nil || want.Token != "" || want.Delta != "" {
		t.Fatalf("%q: scan %+v, ParseOp %+v", msg, got, want)
	}
	return true
}

// The ordinary publishes take the fast path; the rest fall back.
func TestScanPublishSubset(t *testing.T) {
	for i, s := range scanSeeds {
		fast := checkScan(t, []byte(s))
		if want := i < 5; fast != want {
			t.Errorf("%q: fast path %v, want %v", s, fast, want)
		}
	}
	interned := "chat.room1"
	op, ok := ScanPublish([]byte(scanSeeds[0]), func(b []byte) string {
		if string(b) != interned {
			t.Fatalf("intern got %q", b)
		}
		return interned
	})
	if !ok || op.Topic != interned || op.ID != 17 || string(op.Data) != `{"text":"hello, room","n":1}` {
		t.Fatalf("%+v %v", op, ok)
	}
}
