package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary. Without one the browser test skips, except in
// CI (CI set), where it fails: CI installs the Debian package chromium (.ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium binary on PATH: CI must run the GraphiQL browser test (install the Debian package chromium)")
	}
	t.Skip("no chromium binary on PATH (apt-get install chromium); the GraphiQL browser test runs in CI")
	return ""
}

// screenshotPath is where the browser test leaves its screenshot (git-ignored; CI keeps it).
const screenshotPath = ".artifacts/graphiql.png"

// TestGraphiQLInBrowser loads GraphiQL in headless Chromium that can reach nothing but
// loopback (every other host fails to resolve, and any request to one fails the test), puts
// the key in the Headers tab, runs a query, reads its answer on the page, opens the docs and
// finds Query there without re-fetching the schema by hand; then checks where the key is kept
// (sessionStorage unless the user ticks "Remember the key", localStorage then), reloads with
// the key remembered and finds the docs again at once.
// Any console error fails it (a 401 for the schema, a blocked script, a CSP violation).
func TestGraphiQLInBrowser(t *testing.T) {
	bin := chromium(t)
	s := startServing(t)

	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	listener := func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u, err := url.Parse(ev.Request.URL)
			if err != nil {
				problem("request to an unparsable URL %q", ev.Request.URL)
				return
			}
			switch u.Scheme {
			case "data", "blob", "about":
				return
			}
			if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
				problem("request to another host: %s", ev.Request.URL)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				problem("console.%s: %s", ev.Type, strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problem("uncaught exception: %s", msg)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problem("browser log error (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // CI runs as root in a container
		chromedp.WindowSize(1400, 900),
		// Loopback only: no other name resolves, no proxy, no background traffic.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithListener(listener))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// GraphiQL's CodeMirror editors keep their instance on the wrapper element.
	setEditor := func(sel, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.CodeMirror.setValue(%q); return true })()`, sel, value))(ctx, tt)
			return err
		})
	}
	waitText := func(sel, want string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := chromedp.Poll[bool](fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.innerText.includes(%q) })()`, sel, want),
				chromedp.WithPollingTimeout(20*time.Second))(ctx, tt)
			if err != nil {
				return fmt.Errorf("%s never showed %q: %w", sel, want, err)
			}
			return nil
		})
	}
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	headers := fmt.Sprintf(`{"Authorization": "Bearer %s"}`, s.key)
	const docs = `.graphiql-doc-explorer`
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-container")),
		click(`button[data-name="headers"]`),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror`)),
		setEditor(`.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror`, headers),
		setEditor(`.graphiql-query-editor .CodeMirror`, "{ viewer { role apiKey { name } } }"),
		click(`.graphiql-execute-button`),
		waitText(`.result-window`, `"role": "ADMIN"`),
		click(`button[aria-label="Show Documentation Explorer"]`),
		waitText(docs, "Query"),
	)
	if err == nil {
		var png []byte
		if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			if err = os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err == nil {
				err = os.WriteFile(screenshotPath, png, 0o644)
			}
			abs, _ := filepath.Abs(screenshotPath)
			t.Logf("screenshot: %s", abs)
		}
	}
	if err == nil {
		// Not remembered by default: the key is in sessionStorage (it survives a reload, not
		// the tab), nowhere in localStorage. Then the user ticks "Remember the key": after a
		// reload the docs are there at once, the key in localStorage; unticked, it is gone
		// from localStorage again.
		keyIn := func(store string, want bool) chromedp.Action[chromedp.Void] {
			return chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
				got, err := chromedp.Poll[bool](fmt.Sprintf(`(() => Object.keys(%[1]s).some((k) => (%[1]s.getItem(k) || '').includes(%[2]q)) === %[3]v)()`, store, s.key, want),
					chromedp.WithPollingTimeout(10*time.Second))(ctx, tt)
				if err != nil || !got {
					return fmt.Errorf("the key in %s: want %v: %v", store, want, err)
				}
				return nil
			})
		}
		err = chromedp.Do(ctx,
			keyIn("localStorage", false),
			keyIn("sessionStorage", true),
			click(`#orchard-remember`),
			keyIn("localStorage", true),
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(".graphiql-container")),
			click(`button[aria-label="Show Documentation Explorer"]`),
			waitText(docs, "Query"),
			click(`#orchard-remember`),
			keyIn("localStorage", false),
		)
	}
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000) + "\n" + document.querySelector('.graphiql-editor-tool').outerHTML.replace(/<div class="CodeMirror-code".*?<\/section>/gs, '').slice(0, 3000)`))
		t.Errorf("GraphiQL: %v\npage text:\n%s", err, html)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}
