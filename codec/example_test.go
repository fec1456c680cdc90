package codec_test

import (
	"fmt"

	"github.com/fanwire/fanwire/codec"
)

// The caller's loop: parse what is buffered, keep what was not consumed,
// and append the next read to it.
func ExampleParser_Next() {
	key := [4]byte{1, 2, 3, 4}
	var wire []byte
	wire = codec.AppendMaskedFrame(wire, codec.OpText, false, []byte("Hel"), key)
	wire = codec.AppendMaskedFrame(wire, codec.OpPing, true, nil, key)
	wire = codec.AppendMaskedFrame(wire, codec.OpContinuation, true, []byte("lo"), key)
	wire = codec.AppendMaskedCloseFrame(wire, codec.CloseNormal, "bye", key)

	var p codec.Parser
	cfg := codec.ParserConfig{MaxMessage: 1 << 20}
	var buf, msg []byte
	for _, read := range [][]byte{wire[:4], wire[4:13], wire[13:]} { // arbitrary reads
		buf = append(buf, read...)
		for {
			f, n, err := p.Next(buf, &cfg)
			if err != nil {
				fmt.Println("close with", err.Code)
				return
			}
			buf = buf[n:]
			if f.Kind == codec.NeedMore {
				if n == 0 {
					break
				}
				continue
			}
			switch f.Kind {
			case codec.DataChunk:
				msg = append(msg, f.Payload...)
				if f.Fin {
					fmt.Printf("message %q\n", msg)
					msg = msg[:0]
				}
			case codec.Ping:
				fmt.Println("ping")
			case codec.Close:
				fmt.Println("close", f.CloseCode, string(f.CloseReason))
			}
		}
	}
	// Output:
	// ping
	// message "Hello"
	// close 1000 bye
}
