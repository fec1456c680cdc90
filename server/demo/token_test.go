package demo

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/fanwire/fanwire/server/auth"
)

func TestDemoToken(t *testing.T) {
	m := NewTokenMinter()
	v, err := auth.NewVerifier(auth.Options{HMACSecrets: [][]byte{m.Secret()}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/demo/token?user=ann", nil))
	var got struct {
		Token, User string
		Exp         int64
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	id, e := v.Verify(got.Token)
	if e != nil || id.User != "ann" || !id.CanSubscribe(TopicBTC) || id.CanSubscribe("secret") || id.Expires != got.Exp {
		t.Fatalf("token: %+v %v", id, e)
	}
	for _, bad := range []string{"/demo/token?user=" + "a/b", "/demo/token?user=" + string(make([]byte, 40))} {
		rec = httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", "/demo/token?user=x%2Fy", nil))
		if rec.Code != 400 {
			t.Fatalf("%s: %d", bad, rec.Code)
		}
	}
}
