//go:build e2e_console

package console

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pullgate/pullgate/internal/testupstream"
)

// browser is one headless Chromium tab with what the suite watches:
// every response body (for secrets), the bytes on the wire, and CSP
// violations and uncaught errors of the page.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	bodies map[network.RequestID]string // URL by request, then checked
	seen   []string                     // "URL\nbody" of every finished response
	wire   float64                      // encoded bytes of finished requests since resetWire
	// dialogs are the messages of every confirm() so far; dismiss is
	// how many of the next ones the operator cancels (else OK).
	dialogs []string
	dismiss int
}

// chromiumPath is Debian's chromium unless PULLGATE_CHROMIUM names another.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("PULLGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no chromium: apt-get install chromium (or set PULLGATE_CHROMIUM)")
	return ""
}

// newBrowser starts a fresh browser (own profile: no cookies shared
// between the suite's users).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
		// The suite runs as root in CI containers, where Chromium's
		// sandbox cannot start.
		chromedp.Flag("no-sandbox", os.Geteuid() == 0),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	b := &browser{t: t, ctx: ctx, bodies: map[network.RequestID]string{}}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	// Record CSP violations and errors from the first script on: a
	// tenant-chosen name that became markup would trigger one.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; window.__errors = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('error', (e) => window.__errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__errors.push('unhandled: ' + String(e.reason && e.reason.stack || e.reason)));`,
	}); err != nil {
		t.Fatal(err)
	}
	responses := chromedp.Events(ctx, network.ResponseReceived)
	finished := chromedp.Events(ctx, network.LoadingFinished)
	go func() {
		for ev, err := range responses {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.bodies[ev.RequestID] = ev.Response.URL
			b.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range finished {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.wire += ev.EncodedDataLength
			url := b.bodies[ev.RequestID]
			b.mu.Unlock()
			res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: ev.RequestID})
			if err != nil {
				continue // a body Chrome did not keep (redirects, downloads)
			}
			b.mu.Lock()
			b.seen = append(b.seen, url+"\n"+string(res.Body))
			b.mu.Unlock()
		}
	}()
	// Answer every confirm(): the operator clicks OK unless told to
	// cancel the next one (b.cancelNext).
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			accept := b.dismiss == 0
			if !accept {
				b.dismiss--
			}
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
		}
	}()
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage text: %s\nscript errors: %s", what, err, b.text(), b.errors())
	}
}

// eval runs JavaScript and returns its value.
func eval[T any](b *browser, js string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// errors are the page's uncaught errors and CSP violations.
func (b *browser) errors() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([window.__errors, window.__csp])`))
	return s
}

// text is what the page shows (for failure messages).
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

// waitText waits until the page shows s.
func (b *browser) waitText(s string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(b.text(), s) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("page never showed %q; it shows:\n%s", s, b.text())
}

// dom is the serialised document plus every form field's current value.
func (b *browser) dom() string {
	return eval[string](b, `document.documentElement.outerHTML + '\n' + [...document.querySelectorAll('input,textarea,select')].map((e) => e.value).join('\n')`)
}

// responses returns "URL\nbody" of every response so far.
func (b *browser) responses() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

func (b *browser) resetWire() {
	b.mu.Lock()
	b.wire = 0
	b.mu.Unlock()
}

func (b *browser) wireBytes() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wire
}

// shots is where screenshots go: $PULLGATE_CONSOLE_SCREENSHOTS, else
// e2e/console/out (ignored by git).
func shots(t *testing.T) string {
	dir := os.Getenv("PULLGATE_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(testupstream.RepoRoot(t), "e2e", "console", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the whole page at desktop size and at a phone's,
// after checking that its controls are accessible.
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	b.accessible(name)
	if bad := eval[string](b, `(document.querySelector('main').innerText.match(/\b(null|undefined|NaN)\b|\[object /) || [''])[0]`); bad != "" {
		b.t.Errorf("%s: the page shows %q:\n%s", name, bad, b.text())
	}
	for _, v := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1366, 900, false}, {"phone", 390, 844, true}} {
		steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(v.w, v.h)}
		if v.mobile {
			steps = []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(v.w, v.h, chromedp.EmulateMobile)}
		}
		b.do("viewport "+v.suffix, append(steps, chromedp.Sleep(150*time.Millisecond))...)
		if v.mobile {
			b.fitsPhone(name, v.w)
		}
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+v.suffix+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("viewport reset", chromedp.EmulateReset())
}

// fitsPhone checks the page at a phone's width: nothing is wider than the
// screen, no element (table cells in scroll boxes included) lies outside
// it, and every row action and toggle can be reached without scrolling
// sideways.
func (b *browser) fitsPhone(name string, width int64) {
	b.t.Helper()
	if w := eval[float64](b, `document.documentElement.scrollWidth`); w > float64(width)+1 {
		b.t.Errorf("%s on a phone: the page is %v px wide, wider than the %d px screen", name, w, width)
	}
	// Elements that are laid out (not hidden, not the off-screen skip
	// link until it has the focus) and reach past either edge.
	out := eval[[]string](b, `(() => {
  const W = window.innerWidth, what = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') + ' "' + (e.textContent || '').trim().slice(0, 30) + '"';
  return [...document.body.querySelectorAll('*')].filter((e) => {
    if (e.closest('.skip, svg')) return false;
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    return r.left < -1 || r.right > W + 1;
  }).slice(0, 12).map(what);
})()`)
	if len(out) != 0 {
		b.t.Errorf("%s on a phone: elements outside the %d px screen: %q", name, width, out)
	}
	cut := eval[[]string](b, `(() => {
  const W = window.innerWidth;
  return [...document.querySelectorAll('main td button, main td select, main [role=switch], #nav a, #who button, #who select')].filter((e) => {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    return r.left < 0 || r.right > W;
  }).map((e) => (e.getAttribute('aria-label') || e.textContent || e.tagName).trim().slice(0, 40));
})()`)
	if len(cut) != 0 {
		b.t.Errorf("%s on a phone: controls not (fully) on the %d px screen: %q", name, width, cut)
	}
}

// cancelNext makes the operator answer the next confirm() with Cancel.
func (b *browser) cancelNext() {
	b.mu.Lock()
	b.dismiss++
	b.mu.Unlock()
}

// lastDialog is the message of the latest confirm(), "" if none.
func (b *browser) lastDialog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) == 0 {
		return ""
	}
	return b.dialogs[len(b.dialogs)-1]
}

// downloadsTo lets the page download files, into dir.
func (b *browser) downloadsTo(dir string) {
	b.t.Helper()
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		b.t.Fatalf("set the download directory: %v", err)
	}
}

// downloaded waits for a finished download named name in dir and
// returns its content.
func (b *browser) downloaded(dir, name string) []byte {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(raw) > 0 {
			return raw
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	b.t.Fatalf("no download %s in %s (it holds %v); page: %s", name, dir, entries, b.text())
	return nil
}
