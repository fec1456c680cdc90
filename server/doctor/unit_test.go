package doctor

import (
	"os"
	"strings"
	"testing"
)

// The unit doctor points at has the limits it recommends and no secrets on
// its command line.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/fanwire.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"\nLimitNOFILE=1048576\n", "\nTasksMax=", "\nRestart=on-failure\n", "\nEnvironmentFile=", "LoadCredential=", "\nExecStart=/usr/local/bin/fanwire serve "} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	for _, line := range strings.Split(unit, "\n") {
		if strings.HasPrefix(line, "ExecStart=") && (strings.Contains(line, "key") || strings.Contains(line, "token") || strings.Contains(line, "secret")) {
			t.Errorf("a secret on the command line: %s", line)
		}
	}
}
