package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fanwire/fanwire/codec"
	"github.com/fanwire/fanwire/loadtest"
)

// Centrifugo v6 as a peer (`--servers ...,centrifugo`): the Go real-time
// server most teams run. It is not ours to adapt, so the harness installs
// the release with `go install` (through the module proxy) into a cache
// directory once, writes a config per start, and speaks Centrifugo's JSON
// protocol in the load generator (loadtest/centrifugo.go) and its HTTP API
// in the publisher.

const (
	serverCentrifugo  = "centrifugo"
	CentrifugoModule  = "github.com/centrifugal/centrifugo/v6"
	CentrifugoVersion = "v6.9.1"
	centrifugoWSPath  = "/connection/websocket"
)

// fanwire's --history and --history-ttl defaults (server.DefaultHistory
// and DefaultHistoryTTL; a test keeps them equal): not imported, so the
// bench/peers module, which builds against this package, does not pull
// in the server's dependencies.
const (
	fanwireHistory    = 100
	fanwireHistoryTTL = 5 * time.Minute
)

// centrifugoServer is the Server entry; PrepareCentrifugo sets its Path.
func centrifugoServer() Server {
	return Server{Name: serverCentrifugo, Dialect: loadtest.DialectCentrifugo, Launch: centrifugoLaunch}
}

// CentrifugoCacheDir is where the binary goes: $XDG_CACHE_HOME/fanwire-bench
// (or ~/.cache/fanwire-bench)/centrifugo-<version>.
func CentrifugoCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "fanwire-bench", "centrifugo-"+CentrifugoVersion), nil
}

// PrepareCentrifugo installs Centrifugo if a server in list needs it and
// points those servers at the binary.
func PrepareCentrifugo(ctx context.Context, list []Server, logf func(string, ...any)) error {
	need := false
	for _, s := range list {
		need = need || s.Name == serverCentrifugo
	}
	if !need {
		return nil
	}
	bin, err := InstallCentrifugo(ctx, logf)
	if err != nil {
		return err
	}
	for i := range list {
		if list[i].Name == serverCentrifugo {
			list[i].Path = bin
		}
	}
	return nil
}

// InstallCentrifugo returns the cached binary, running `go install
// module@version` into the cache directory the first time.
func InstallCentrifugo(ctx context.Context, logf func(string, ...any)) (string, error) {
	dir, err := CentrifugoCacheDir()
	if err != nil {
		return "", fmt.Errorf("centrifugo: no cache directory: %w", err)
	}
	bin := filepath.Join(dir, "centrifugo")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("centrifugo: %w", err)
	}
	mod := CentrifugoModule + "@" + CentrifugoVersion
	logf("installing Centrifugo: go install %s into %s (once; it downloads and builds a large module, minutes)", mod, dir)
	cmd := exec.CommandContext(ctx, "go", "install", mod)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir() // outside any module: fanwire's go.mod stays untouched
	out, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("centrifugo: go install: %w", err)
	}
	tail := &tailBuffer{max: 4096}
	start, lines := time.Now(), 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fmt.Fprintln(tail, sc.Text())
		if lines++; lines%25 == 0 {
			logf("installing Centrifugo: %d modules fetched or built, %s", lines, time.Since(start).Round(time.Second))
		}
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("centrifugo: go install %s failed (%v); is the Go module proxy reachable (GOPROXY)?\n%s", mod, err, tail.String())
	}
	logf("installed Centrifugo %s in %s", CentrifugoVersion, time.Since(start).Round(time.Second))
	return bin, nil
}

// centrifugoConfig is the v6 config of one run: WebSocket on ws, the HTTP
// API on the internal port ctl, history as fanwire's defaults (100
// messages, 5 min) on every channel without namespace, presence off,
// anonymous connects and client-side subscribes allowed (fanwire's URL
// subscriptions need no token either), and pings as rare as the harness
// sets them for fanwire (--ping-interval 10m), so idle density sees none.
func centrifugoConfig(ws, ctl, apiKey string) ([]byte, error) {
	wsHost, wsPort, err := net.SplitHostPort(ws)
	if err != nil {
		return nil, err
	}
	ctlHost, ctlPort, err := net.SplitHostPort(ctl)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(wsPort)
	if err != nil {
		return nil, err
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	cfg := map[string]any{
		"log": map[string]any{"level": "error"},
		"http_server": map[string]any{
			"address": wsHost, "port": port,
			"internal_address": ctlHost, "internal_port": ctlPort,
		},
		"http_api": map[string]any{"key": apiKey}, // external false: on the internal port
		"client": map[string]any{
			"allow_anonymous_connect_without_token": true,
			"token":                                 map[string]any{"hmac_secret_key": hex.EncodeToString(secret[:])},
			"ping_interval":                         "10m",
			"pong_timeout":                          "8s",
			"allowed_origins":                       []string{"*"},
		},
		"channel": map[string]any{
			"without_namespace": map[string]any{
				"allow_subscribe_for_client":    true,
				"allow_subscribe_for_anonymous": true,
				"history_size":                  fanwireHistory,
				"history_ttl":                   fanwireHistoryTTL.String(),
				"allow_recovery":                true, // fanwire's since= resume
				"force_recovery":                false,
				"presence":                      false,
				"join_leave":                    false,
			},
		},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// centrifugoLaunch writes the config for ws and ctl and returns the
// arguments that start Centrifugo with it; cleanup removes the file once
// the server listens. s.APIKey is set for the publisher.
func centrifugoLaunch(s *Server, ws, ctl string) (args []string, cleanup func(), err error) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	s.APIKey = hex.EncodeToString(key[:])
	raw, err := centrifugoConfig(ws, ctl, s.APIKey)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.CreateTemp("", "fanwire-bench-centrifugo-*.json")
	if err != nil {
		return nil, nil, err
	}
	name := f.Name()
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return nil, nil, err
	}
	return []string{"--config", name}, func() { os.Remove(name) }, nil
}

// dialectPath turns the harness's fanwire upgrade path ("/ws?topics=t")
// into the server's: Centrifugo's endpoint, the query kept for the
// dialect to read the channel (and a token) from.
func dialectPath(dialect, path string) string {
	if dialect != loadtest.DialectCentrifugo {
		return path
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return centrifugoWSPath + path[i:]
	}
	return centrifugoWSPath
}

func dialectPaths(dialect string, paths []string) []string {
	if dialect == "" {
		return paths
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = dialectPath(dialect, p)
	}
	return out
}

// centrifugoSubscribe sends the connect and subscribe commands on an
// upgraded blocking socket and waits for the subscribe reply (idle and
// slow clients: raw sockets that read nothing afterwards).
func centrifugoSubscribe(fd int, path string) error {
	ch := ""
	if i := strings.Index(path, "topics="); i >= 0 {
		ch, _, _ = strings.Cut(path[i+len("topics="):], "&")
		ch, _, _ = strings.Cut(ch, ",")
	}
	cmds := fmt.Sprintf(`{"id":1,"connect":{"name":"fanwire-bench"}}`+"\n"+`{"id":2,"subscribe":{"channel":%q}}`, ch)
	frame := codec.AppendMaskedFrame(nil, codec.OpText, true, []byte(cmds), [4]byte{1, 2, 3, 4})
	if err := writeAll(fd, frame); err != nil {
		return err
	}
	var buf [4096]byte
	got := 0
	for {
		if i := bytes.Index(buf[:got], []byte(`{"id":2,`)); i >= 0 {
			if bytes.Contains(buf[i:got], []byte(`"error"`)) {
				return fmt.Errorf("centrifugo subscribe: %s", buf[i:got])
			}
			if bytes.Contains(buf[i:got], []byte(`"subscribe"`)) {
				return nil
			}
		}
		if got == len(buf) {
			return fmt.Errorf("centrifugo: no subscribe reply in %d bytes", got)
		}
		n, err := syscall.Read(fd, buf[got:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("centrifugo subscribe reply: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("centrifugo closed before the subscribe reply: %q", buf[:got])
		}
		got += n
	}
}

// postCentrifugo publishes through Centrifugo's HTTP API: POST /api/publish
// for one message, /api/batch for several, with the X-API-Key header. Its
// answers carry no subscriber count: p.Expect per message stands in.
func (p *Publisher) postCentrifugo(ctx context.Context, topics []string, body *[]byte, now int64) (int64, error) {
	b := (*body)[:0]
	url := p.API + "/api/publish"
	if len(topics) == 1 {
		b = append(b, `{"channel":"`+topics[0]+`","data":`...)
		b = AppendPayload(b, now, p.Size)
		b = append(b, '}')
	} else {
		url = p.API + "/api/batch"
		b = append(b, `{"parallel":true,"commands":[`...)
		for i, t := range topics {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"publish":{"channel":"`+t+`","data":`...)
			b = AppendPayload(b, now, p.Size)
			b = append(b, "}}"...)
		}
		b = append(b, "]}"...)
	}
	*body = b
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", p.APIKey)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("centrifugo publish: %s", resp.Status)
	}
	if bytes.Contains(raw, []byte(`"error"`)) {
		return 0, fmt.Errorf("centrifugo publish: %.200s", raw)
	}
	return p.Expect * int64(len(topics)), nil
}

// IsCentrifugo says whether name is the Centrifugo peer (installed, not
// built from bench/peers).
func IsCentrifugo(name string) bool { return name == serverCentrifugo }
