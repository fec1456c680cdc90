package bench

import (
	"os"
	"strings"
	"testing"
)

func TestParseSmapsRollupPSS(t *testing.T) {
	const rollup = `55d0c8a4e000-7ffc5b9f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               27008 kB
Pss:               20199 kB
Pss_Dirty:         18000 kB
Pss_Anon:          17500 kB
Pss_File:           2699 kB
Pss_Shmem:             0 kB
Shared_Clean:       6000 kB
`
	v, err := parseSmapsRollupPSS(strings.NewReader(rollup))
	if err != nil || v != 20199*1024 {
		t.Fatalf("Pss = %d, %v; want %d", v, err, 20199*1024)
	}
	if _, err := parseSmapsRollupPSS(strings.NewReader("Rss: 1 kB\nPss_Anon: 2 kB\n")); err == nil {
		t.Fatal("no Pss line: want an error, not a Pss_* part")
	}
	if v, err := PSS(os.Getpid()); err != nil || v <= 0 {
		t.Fatalf("PSS(self) = %d, %v", v, err)
	}
}
