package namespace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var flags = Defaults{LastValue: "prices.*,scores.*", History: 100, HistoryTTL: 5 * time.Minute}

func TestExampleFile(t *testing.T) {
	s, err := Load("testdata/example.toml", flags)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic, ns   string
		anon, token bool
		lastValue   bool
		history     int
	}{
		{"prices.BTC-USD", "public", true, false, true, 0},
		{"chat.room1", "chat", false, true, false, 500},
		{"news.members.x", "members", false, false, false, 100},
		{"other", "default", false, true, false, 100},
	}
	for _, c := range cases {
		ns := s.Match(c.topic)
		if ns.Name != c.ns || ns.AnonymousSubscribe != c.anon || ns.TokenRequired != c.token || ns.KeepsLastValue(c.topic) != c.lastValue || ns.History != c.history {
			t.Errorf("%s: %+v", c.topic, ns)
		}
	}
	if chat := s.Match("chat.x"); chat.HistoryTTL != time.Hour || chat.MaxMessage != 4096 || !chat.Publish || !chat.Presence || !chat.JoinLeave {
		t.Errorf("chat: %+v", chat)
	}
}

func TestFlagsOnly(t *testing.T) {
	s, err := FromFlags(flags)
	if err != nil {
		t.Fatal(err)
	}
	if ns := s.Match("prices.x"); ns.Name != "default" || !ns.KeepsLastValue("prices.x") || ns.KeepsLastValue("chat.x") || ns.History != 100 {
		t.Fatalf("%+v", ns)
	}
}

func TestBadFiles(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"[default]\nhistroy = 5\n", "default.histroy: unknown key"},
		{"[default]\nhistory = -1\n", "default.history: -1"},
		{"[[namespace]]\nname = \"a\"\n", "namespace[0] (a).topics: missing"},
		{"[[namespace]]\ntopics = [\"a.*\"]\n", "namespace[0].name: missing"},
		{"[[namespace]]\nname = \"a\"\ntopics = [\"[\"]\n", "bad pattern"},
		{"[[namespace]]\nname = \"a\"\ntopics = [\"a\"]\nhistory_ttl = \"soon\"\n", "(a).history_ttl"},
		{"[[namespace]]\nname = \"a\"\ntopics = [\"a\"]\nanonymous_subscribe = true\ntoken_required = true\n", "contradicts"},
		{"[[namespace]]\nname = \"a\"\ntopics = [\"a\"]\n[[namespace]]\nname = \"a\"\ntopics = [\"b\"]\n", "used twice"},
		{"[default\n", "line "},
		{"[[namespace]]\nname = \"a\"\ntopics = [\"a\"]\nephemeral = true\nhistory = 3\n", "ephemeral"},
	} {
		f := filepath.Join(t.TempDir(), "bad.toml")
		os.WriteFile(f, []byte(c.body), 0o600)
		_, err := Load(f, flags)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), f) {
			t.Errorf("%q: err %v, want it to name the file and %q", c.body, err, c.want)
		}
	}
}
