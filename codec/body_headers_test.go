package codec

import "testing"

// POST /publish reads Content-Length (the first) and whether any
// Transfer-Encoding is present (such bodies are refused with 411).
func TestRequestBodyHeaders(t *testing.T) {
	in := "POST /publish HTTP/1.1\r\nHost: x\r\ncontent-length: 12\r\nContent-Length: 99\r\n\r\n"
	req, n, err := ParseRequest([]byte(in), 0)
	if err != nil || n != len(in) || string(req.ContentLength) != "12" || req.TransferEncoding {
		t.Fatalf("%+v %d %v", req, n, err)
	}
	req, _, err = ParseRequest([]byte("POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 0)
	if err != nil || !req.TransferEncoding || req.ContentLength != nil {
		t.Fatalf("%+v %v", req, err)
	}
}
