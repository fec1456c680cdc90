package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestBatchPublishesInOrderVerbatim(t *testing.T) {
	pub := &fakePublisher{}
	body := strings.Join([]string{
		`{"topic":"prices.BTC-USD","data":{"price": 1.50,  "x":[ ]}}`,
		``,
		`  {"data":"caf\u00e9","topic":"a"}  `,
		"\t\r",
		`{"topic":"prices.BTC-USD","data":null}`,
	}, "\n") + "\n"
	rec := do(t, NewHandler(pub, Options{}), "POST", "/publish", strings.NewReader(body))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	var got BatchResult
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := BatchResult{Published: 3, Results: []PublishResult{
		publishResult("prices.BTC-USD", 1, 3), publishResult("a", 1, 3), publishResult("prices.BTC-USD", 2, 3),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("result = %+v, want %+v", got, want)
	}
	wantCalls := []published{
		{"prices.BTC-USD", `{"price": 1.50,  "x":[ ]}`},
		{"a", `"caf\u00e9"`},
		{"prices.BTC-USD", `null`},
	}
	if calls := pub.published(); !reflect.DeepEqual(calls, wantCalls) {
		t.Fatalf("publisher got %q, want %q", calls, wantCalls)
	}
}

func TestBatchStopsAtFirstBadLine(t *testing.T) {
	good := `{"topic":"t","data":1}`
	cases := []struct {
		name, bad string
		code      string
	}{
		{"not json", `{"topic":"t","data":`, CodeBadJSON},
		{"invalid utf-8", "{\"topic\":\"t\",\"data\":\"\xc3\"}", CodeBadJSON},
		{"not an object", `[1,2]`, CodeBadJSON},
		{"topic not a string", `{"topic":5,"data":1}`, CodeBadJSON},
		{"missing topic", `{"data":1}`, CodeMissingTopic},
		{"invalid topic", `{"topic":"a b","data":1}`, CodeInvalidTopic},
		{"empty topic", `{"topic":"","data":1}`, CodeInvalidTopic},
		{"missing data", `{"topic":"t"}`, CodeMissingData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pub := &fakePublisher{}
			body := good + "\n\n" + good + "\n" + c.bad + "\n" + good + "\n"
			rec := do(t, NewHandler(pub, Options{}), "POST", "/publish", strings.NewReader(body))
			e := decodeError(t, rec, 400, c.code)
			if e.Line != 4 || e.Published == nil || *e.Published != 2 {
				t.Fatalf("line %d published %v, want line 4 published 2: %s", e.Line, e.Published, rec.Body)
			}
			if n := len(pub.published()); n != 2 {
				t.Fatalf("%d published, want the 2 lines before the bad one", n)
			}
		})
	}
}

func TestBatchPublisherFailure(t *testing.T) {
	pub := &fakePublisher{failOn: "down", err: errors.New("bus unavailable")}
	body := `{"topic":"up","data":1}` + "\n" + `{"topic":"down","data":2}` + "\n" + `{"topic":"up","data":3}`
	rec := do(t, NewHandler(pub, Options{}), "POST", "/publish", strings.NewReader(body))
	e := decodeError(t, rec, 503, CodeUnavailable)
	if e.Line != 2 || e.Published == nil || *e.Published != 1 {
		t.Fatalf("line %d published %v, want line 2 published 1", e.Line, e.Published)
	}
	if n := len(pub.published()); n != 1 {
		t.Fatalf("%d published, want 1", n)
	}
}

func TestBatchEmpty(t *testing.T) {
	for _, body := range []string{"", "\n\n  \n"} {
		decodeError(t, do(t, NewHandler(&fakePublisher{}, Options{}), "POST", "/publish", strings.NewReader(body)), 400, CodeEmptyBody)
	}
}
