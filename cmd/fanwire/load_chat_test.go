package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fanwire/fanwire/server/namespace"
)

// `fanwire load chat` refuses a run without users (usage, 2) and the
// namespace file its help points to is valid and allows anonymous publish
// into the rooms it uses.
func TestLoadChatUsageAndNamespaceFile(t *testing.T) {
	if rc := loadMain([]string{"chat", "--users", "0", "--hot-room-users", "0", "--quiet"}); rc != 2 {
		t.Fatalf("no users: exit %d, want 2", rc)
	}
	if rc := loadMain([]string{"chat", "--help"}); rc != 0 {
		t.Fatalf("--help: exit %d, want 0", rc)
	}
	file := filepath.Join("..", "..", "loadtest", "scripts", "chat-load.toml")
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	set, err := namespace.Load(file, namespace.Defaults{History: 100})
	if err != nil {
		t.Fatal(err)
	}
	ns := set.Match("chat.load.123.room-7")
	if ns.Name != "chat-load" || !ns.MayPublish(false, false) || set.Match("prices.x").MayPublish(false, false) {
		t.Fatalf("namespace %q: anonymous publish %v", ns.Name, ns.MayPublish(false, false))
	}
}
