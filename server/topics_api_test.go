package server_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/fanwire/fanwire/server/api"
)

// TestTopicsAPI lists topics by subscribers, pages through them and reads
// one topic's detail, over the real control listener.
func TestTopicsAPI(t *testing.T) {
	n := startNode(t, false, nil)
	// t.3 has 3 subscribers, t.2 two, t.1 one; prices.X keeps its last value.
	for i := 1; i <= 3; i++ {
		for range i {
			dialWS(t, n.WSAddr(), "/ws?topics=t."+strconv.Itoa(i))
		}
	}
	for i := range 4 {
		publishHTTP(t, n, "prices.X", []byte(`{"p":`+strconv.Itoa(i)+`}`))
	}
	base := "http://" + n.HTTPAddr()
	var page api.TopicPage
	getJSON(t, base+"/topics?limit=2", http.StatusOK, &page)
	if page.Total != 4 || len(page.Topics) != 2 || page.NextOffset == nil || *page.NextOffset != 2 ||
		page.Topics[0].Topic != "t.3" || page.Topics[0].Subscribers != 3 || page.Topics[1].Topic != "t.2" || page.Topics[0].Epoch == "" {
		t.Fatalf("first page: %+v", page)
	}
	page = api.TopicPage{}
	getJSON(t, base+"/topics?limit=2&offset=2", http.StatusOK, &page)
	if len(page.Topics) != 2 || page.NextOffset != nil || page.Topics[0].Topic != "t.1" || page.Topics[1].Topic != "prices.X" || page.Topics[1].Seq != 4 {
		t.Fatalf("second page: %+v", page)
	}
	getJSON(t, base+"/topics?sort=name&limit=1", http.StatusOK, &page)
	if page.Topics[0].Topic != "prices.X" {
		t.Fatalf("by name: %+v", page)
	}
	var d api.TopicDetail
	getJSON(t, base+"/topics/prices.X", http.StatusOK, &d)
	if d.Seq != 4 || d.LastSeq != 4 || string(d.Last) != `{"p":3}` || !d.KeepsLastValue || d.History != 4 || d.Subscribers != 0 {
		t.Fatalf("detail: %+v last=%s", d, d.Last)
	}
	getJSON(t, base+"/topics/nope", http.StatusNotFound, nil)
	getJSON(t, base+"/topics/a%20b", http.StatusBadRequest, nil)
	getJSON(t, base+"/topics?limit=0", http.StatusBadRequest, nil)
	getJSON(t, base+"/topics?limit=abc", http.StatusBadRequest, nil)
	getJSON(t, base+"/topics?offset=-1", http.StatusBadRequest, nil)
	getJSON(t, base+"/topics?sort=seq", http.StatusBadRequest, nil)
	getJSON(t, base+"/topics?offset=99", http.StatusOK, &page)
	if len(page.Topics) != 0 || page.Total != 4 {
		t.Fatalf("past the end: %+v", page)
	}
	resp, err := http.Post(base+"/topics", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /topics: %d", resp.StatusCode)
	}
}
