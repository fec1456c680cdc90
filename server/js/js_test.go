package js

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

func TestResponseIsAValidHTTPAnswer(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(Response)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, Source) || !resp.Close {
		t.Fatalf("status %d, body %d bytes (want %d), close %v", resp.StatusCode, len(body), len(Source), resp.Close)
	}
	for k, want := range map[string]string{
		"Content-Type": ContentType, "Access-Control-Allow-Origin": "*", "ETag": ETag, "Cache-Control": CacheControl,
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !bytes.HasSuffix(Response[:HeaderLen], []byte("\r\n\r\n")) {
		t.Fatal("HeaderLen does not end the header block")
	}
	if !bytes.Contains(Source, []byte("export class Fanwire")) || !bytes.Contains(Types, []byte("export class Fanwire")) {
		t.Fatal("embedded files are not the client")
	}
}
