package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The uWebSockets peer (bench/peers/uwshub, C++) is built from uWebSockets
// and uSockets sources by its build script, not by go build.
const (
	UWSName = "uwshub"
	// UWSOneLoop is uwshub serving the publish API on its WebSocket loop
	// (--publish-thread=false) instead of a thread of its own.
	UWSOneLoop = "uwshub-oneloop"
)

// IsUWS says whether name is the uWebSockets peer or its variant.
func IsUWS(name string) bool { return name == UWSName || name == UWSOneLoop }

// ErrNoUWSSources means neither a source path, the local mirrors nor a git
// clone gave uWebSockets and uSockets sources.
var ErrNoUWSSources = errors.New("bench: no uWebSockets/uSockets sources")

// UWSBuild says where the sources are and where the binary goes.
type UWSBuild struct {
	Script      string // bench/peers/uwshub/build.sh
	UWSSrc      string // uWebSockets checkout or git dir ("": UWS_SRC, mirror, clone)
	USocketsSrc string // uSockets checkout or git dir ("": bundled, USOCKETS_SRC, mirror, clone)
	Out         string // output directory ("": the cache, see build.sh)
}

// BuildUWS compiles uwshub (or reuses the cached binary) and returns its
// path. Missing sources give an error wrapping ErrNoUWSSources.
func BuildUWS(ctx context.Context, b UWSBuild) (string, error) {
	var args []string
	if b.UWSSrc != "" {
		args = append(args, "--uws-src", b.UWSSrc)
	}
	if b.USocketsSrc != "" {
		args = append(args, "--usockets-src", b.USocketsSrc)
	}
	if b.Out != "" {
		args = append(args, "--out", b.Out)
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{b.Script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		return "", fmt.Errorf("%w: %s", ErrNoUWSSources, msg)
	}
	if err != nil {
		return "", fmt.Errorf("building uwshub with %s: %v\n%s", b.Script, err, msg)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	bin := lines[len(lines)-1]
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("building uwshub: %s printed %q, not a binary: %v", b.Script, bin, err)
	}
	return filepath.Clean(bin), nil
}

// SetUWSPath points the uWebSockets entries of list at bin.
func SetUWSPath(list []Server, bin string) {
	for i := range list {
		if IsUWS(list[i].Name) {
			list[i].Path = bin
		}
	}
}

// WithoutUWS drops the uWebSockets entries from names.
func WithoutUWS(names []string) []string {
	var out []string
	for _, n := range names {
		if !IsUWS(n) {
			out = append(out, n)
		}
	}
	return out
}
