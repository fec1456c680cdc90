package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// chatPage is what the demo page's chat shows, read through its data-*
// hooks (server/demo/index.html), not its wording.
type chatPage struct {
	Status string     `json:"status"`  // the connection pill's class: "pill open" when connected
	Lines  []chatLine `json:"lines"`   // #chat-lines, oldest first
	Typing string     `json:"typing"`  // #chat-typing data-users: who is typing, comma-separated
	Member []string   `json:"members"` // #chat-members data-user
	Input  string     `json:"input"`   // #chat-input's value (cleared once a post is acknowledged)
}

type chatLine struct {
	Kind string `json:"kind"` // message, join, leave
	User string `json:"user"`
	Seq  int    `json:"seq"` // messages only
	Text string `json:"text"`
}

const readChatPage = `(() => ({
  status: document.getElementById('status').className,
  lines: [...document.querySelectorAll('#chat-lines li')].map((li) => ({
    kind: li.dataset.kind || '', user: li.dataset.user || '', seq: Number(li.dataset.seq || 0), text: li.textContent })),
  typing: document.getElementById('chat-typing').dataset.users || '',
  members: [...document.querySelectorAll('#chat-members li')].map((li) => li.dataset.user),
  input: document.getElementById('chat-input').value,
}))()`

// chatUser is one browser context (its own cookies and storage: another
// person) with the demo page open as user.
type chatUser struct {
	t    *testing.T
	name string
	ctx  context.Context
	stop func()
}

func (u *chatUser) page() chatPage {
	u.t.Helper()
	var p chatPage
	if err := chromedp.Run(u.ctx, chromedp.Evaluate(readChatPage, &p)); err != nil {
		u.t.Fatalf("%s: reading the page: %v", u.name, err)
	}
	return p
}

// await polls the page (bounded: 30 s on a loaded box) until ok.
func (u *chatUser) await(what string, ok func(chatPage) bool) chatPage {
	u.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := u.page()
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s's page: timed out waiting for %s; it shows %+v", u.name, what, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends text through the chat form and waits for its ack (the page
// clears the input then).
func (u *chatUser) post(text string) error {
	if err := chromedp.Run(u.ctx,
		chromedp.SetValue(`#chat-input`, text, chromedp.ByQuery),
		chromedp.Click(`#chat-form button`, chromedp.ByQuery),
	); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var v string
		if err := chromedp.Run(u.ctx, chromedp.Value(`#chat-input`, &v, chromedp.ByQuery)); err != nil {
			return err
		}
		if v == "" {
			return nil
		}
	}
	return fmt.Errorf("%s: %q not acknowledged", u.name, text)
}

// newBrowserContext opens a window in a new browser context (like an
// incognito window: its own cookies and storage) of browser's Chromium;
// stop closes the window and the context. (chromedp.WithNewBrowserContext
// opens a tab, which this Chromium refuses in a context without a window.)
func newBrowserContext(t *testing.T, browser context.Context) (ctx context.Context, stop func()) {
	t.Helper()
	var bc cdp.BrowserContextID
	var id target.ID
	if err := chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
		exec := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		var err error
		if bc, err = target.CreateBrowserContext().Do(exec); err != nil {
			return err
		}
		id, err = target.CreateTarget("about:blank").WithBrowserContextID(bc).WithNewWindow(true).Do(exec)
		return err
	})); err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(id))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel() // closes the window
			_ = chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
				return target.DisposeBrowserContext(bc).Do(cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser))
			}))
		})
	}
	t.Cleanup(stop)
	return ctx, stop
}

func (p chatPage) messages() (out []chatLine) {
	for _, l := range p.Lines {
		if l.Kind == "message" {
			out = append(out, l)
		}
	}
	return out
}

func (p chatPage) has(kind, user string) bool {
	return slices.ContainsFunc(p.Lines, func(l chatLine) bool { return l.Kind == kind && l.User == user })
}

// TestBrowserChatTwoUsers: two people (two browser contexts of one headless
// Chromium) on the demo chat of a node set up like make run's: presence
// lists both, one's typing indicator appears on the other's page and goes
// away, messages posted by both at once show on both pages in the same seq
// order, and closing one context gives the other a leave.
func TestBrowserChatTwoUsers(t *testing.T) {
	chromium := requireChromium(t)
	n, _ := demoChatNode(t)
	browser := newBrowser(t, chromium, 120*time.Second)
	if err := chromedp.Run(browser); err != nil { // starts chromium
		t.Fatalf("chromium: %v", err)
	}
	open := func(name string) *chatUser {
		ctx, stop := newBrowserContext(t, browser)
		u := &chatUser{t: t, name: name, ctx: ctx, stop: stop}
		if err := chromedp.Run(ctx,
			chromedp.Navigate("http://"+n.HTTPAddr()+"/?user="+name),
			chromedp.WaitVisible(`#chat-card`, chromedp.ByQuery),
		); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return u
	}
	both := []string{"alice", "bob"}
	alice := open("alice")
	alice.await("alice in presence", func(p chatPage) bool { return slices.Equal(p.Member, []string{"alice"}) })
	bob := open("bob")
	bob.await("both in presence", func(p chatPage) bool { return slices.Equal(p.Member, both) })
	alice.await("bob's join and both in presence", func(p chatPage) bool { return p.has("join", "bob") && slices.Equal(p.Member, both) })

	// Typing: bob types without sending; alice sees it, then it expires
	// (the page keeps an indicator 3 s after the last typing message).
	if err := chromedp.Run(bob.ctx, chromedp.SendKeys(`#chat-input`, "hel", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	alice.await("bob typing", func(p chatPage) bool { return p.Typing == "bob" })
	alice.await("the typing indicator to go away", func(p chatPage) bool { return p.Typing == "" })
	t.Logf("bob's typing indicator shown and gone on alice's page after %v", time.Since(start).Round(time.Millisecond))
	if p := bob.page(); p.Typing != "" {
		t.Fatalf("bob's page shows his own typing: %+v", p)
	}

	// Both post at once, three each, through the form.
	const each = 3
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, u := range []*chatUser{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				if err := u.post(fmt.Sprintf("%s says %d", u.name, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := func(p chatPage) bool { return len(p.messages()) == 2*each }
	pa, pb := alice.await("every message", all), bob.await("every message", all)
	ma, mb := pa.messages(), pb.messages()
	if !slices.Equal(ma, mb) {
		t.Fatalf("the pages differ:\nalice %+v\nbob   %+v", ma, mb)
	}
	seen := map[string]bool{}
	for i, m := range ma {
		if i > 0 && m.Seq != ma[i-1].Seq+1 {
			t.Fatalf("seqs not consecutive and in order: %+v", ma)
		}
		seen[m.Text] = true
	}
	for _, u := range both {
		for i := 1; i <= each; i++ {
			if text := fmt.Sprintf("%s: %s says %d", u, u, i); !seen[text] {
				t.Fatalf("no %q in %+v", text, ma)
			}
		}
	}

	// Bob closes his browser context: alice gets his leave (after the 2 s
	// linger) and presence lists only her.
	bob.stop()
	closed := time.Now()
	alice.await("bob's leave", func(p chatPage) bool { return p.has("leave", "bob") && slices.Equal(p.Member, []string{"alice"}) })
	t.Logf("bob's leave on alice's page %v after his context closed", time.Since(closed).Round(time.Millisecond))
	if p := alice.page(); !p.has("join", "bob") || p.Status != "pill open" {
		t.Fatalf("alice's page: %+v", p)
	}
}
