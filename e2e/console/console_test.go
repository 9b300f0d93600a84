//go:build e2e_console

package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/internal/e2eproc"
	"github.com/pullgate/pullgate/internal/testupstream"
	"github.com/pullgate/pullgate/pkg/wire"
)

// Names a malicious tenant or node chooses, meant to run script if the
// console ever parsed data as HTML.
const (
	xssUser    = `<img src=x onerror="window.__xss='username'"><script>window.__xss='script'</script>`
	xssVersion = `<img/src=x/onerror=window.__xss='version'>`
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// apiCall is a request with a bearer token, as the CLI sends it.
func apiCall(t *testing.T, base, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func mustAPI(t *testing.T, base, token, method, path string, body any, want int, out any) {
	t.Helper()
	if code := apiCall(t, base, token, method, path, body, out); code != want {
		t.Fatalf("%s %s: %d, want %d", method, path, code, want)
	}
}

// pull fetches an image through the hub with an install token, layers
// included, as a runtime would.
func pull(hubAddr, token, repo string) error {
	ref, err := name.ParseReference(hubAddr+"/"+repo, name.Insecure)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "pullgate", Password: token}), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// go opens a section of the console and waits for its heading.
func (b *browser) open(base, section, heading string) {
	b.t.Helper()
	b.do("open "+section, chromedp.Navigate(base+"/#/"+section), chromedp.WaitVisible(chromedp.CSS("main h1")))
	b.waitText(heading)
}

// login signs in with the keyboard only: the token field has the focus
// when the page opens, Enter submits.
func (b *browser) login(base, token string) {
	b.t.Helper()
	b.do("open the login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)))
	if f := eval[string](b, `document.activeElement && document.activeElement.name`); f != "token" {
		b.t.Errorf("login page: the focus is on %q, not the token field", f)
	}
	b.do("log in", chromedp.KeyEvent(token+"\r"), chromedp.WaitVisible(chromedp.ID("nav")))
}

// noXSS checks that nothing a tenant named ran or became markup.
func (b *browser) noXSS(where string) {
	b.t.Helper()
	if v := eval[string](b, `String(window.__xss)`); v != "undefined" {
		b.t.Errorf("%s: injected script ran (%s)", where, v)
	}
	if n := eval[int](b, `document.querySelectorAll('main img, main script').length`); n != 0 {
		b.t.Errorf("%s: %d img/script elements made from data", where, n)
	}
	if v := eval[[]string](b, `window.__csp`); len(v) != 0 {
		b.t.Errorf("%s: CSP violations %q", where, v)
	}
	if v := eval[[]string](b, `window.__errors`); len(v) != 0 {
		b.t.Errorf("%s: script errors %q", where, v)
	}
}

// accessible checks that every control has a name a screen reader
// reads, and that clickable things are buttons or links, not divs.
func (b *browser) accessible(where string) {
	b.t.Helper()
	bad := eval[[]string](b, `[...document.querySelectorAll('input:not([type=hidden]),select,textarea,button')]
  .filter((e) => !e.closest('[hidden]'))
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map((e) => e.outerHTML.slice(0, 80))`)
	if len(bad) != 0 {
		b.t.Errorf("%s: controls without a name: %q", where, bad)
	}
	if n := eval[int](b, `[...document.querySelectorAll('main div[tabindex], main span[tabindex], main [role=button]:not(button)')].length`); n != 0 {
		b.t.Errorf("%s: %d clickable non-buttons", where, n)
	}
}

func (b *browser) noSecret(where, secret string) {
	b.t.Helper()
	if strings.Contains(b.dom(), secret) {
		b.t.Errorf("%s: the upstream secret is in the page", where)
	}
}

func TestConsoleOperator(t *testing.T) {
	began := time.Now()
	secret := "upstream-secret-" + randHex(12)
	up := testupstream.StartInProcess(t, testupstream.WithTokenAuth("puller", secret))
	up.PushRandomImage(t, "org/app", "v1", 2, 64<<10)
	hub := e2eproc.StartHub(t, t.TempDir())
	base := "http://" + hub.Addr
	admin := hub.AdminToken(t)
	for _, ws := range []string{"acme", "beta"} {
		mustAPI(t, base, admin, "POST", "/api/v1/workspaces", map[string]string{"name": ws}, 201, nil)
	}
	operator := memberToken(t, base, admin, "acme", "olga", "operator")
	viewer := memberToken(t, base, admin, "acme", "vera", "viewer")
	outsider := memberToken(t, base, admin, "beta", "bob", "owner")
	out := shots(t)

	b := newBrowser(t)
	// Page weight: everything the first load of the console moves.
	b.resetWire()
	b.do("first load", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)), chromedp.Sleep(500*time.Millisecond))
	weight := b.wireBytes()
	b.screenshot(out, "login")

	b.login(base, operator)
	b.waitText("olga (operator)")
	checkSessionCookie(t, b)
	if strings.Contains(b.dom(), operator) || strings.Contains(eval[string](b, `JSON.stringify(localStorage) + JSON.stringify(sessionStorage)`), operator) {
		t.Error("the login token is kept by the page (DOM or storage)")
	}

	// Add the registry; the secret goes into a password field.
	b.do("add registry",
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "corp"),
		chromedp.SendKeys(chromedp.CSS(`input[name=host]`), "registry.corp"),
		chromedp.SendKeys(chromedp.CSS(`input[name=endpoint]`), up.URL),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "puller"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password][type=password]`), secret),
		chromedp.Click(chromedp.ID("reg-private")),
		chromedp.Click(chromedp.Search(`//button[text()='Add registry']`)))
	b.waitText("Registry corp added")
	b.noSecret("after adding the registry", secret)
	// The per-step test, with the upstream's real token auth.
	b.do("test registry", chromedp.Click(chromedp.Search(`//tr[td[1]='corp']//button[text()='Test']`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=repository]`), "org/app"),
		chromedp.Click(chromedp.Search(`//button[text()='Run test']`)))
	b.waitText("Can pull registry.corp/org/app")
	if n := eval[int](b, `document.querySelectorAll('.steps .fail').length`); n != 0 {
		t.Fatalf("registry test: %d failed steps:\n%s", n, b.text())
	}
	// Rotate: a new secret version (the same secret here: the upstream
	// has one password).
	b.do("rotate", chromedp.Click(chromedp.Search(`//tr[td[1]='corp']//button[text()='Rotate']`)),
		chromedp.SendKeys(chromedp.CSS(`.detail input[name=password][type=password]`), secret),
		chromedp.Click(chromedp.Search(`//button[text()='Store new secret']`)))
	b.waitText("secret version 2")
	b.noSecret("after rotating", secret)
	b.screenshot(out, "registries")

	// Create an install and mint a token, shown once.
	b.open(base, "installs", "Installs")
	b.do("create install",
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "web"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=repos]`), "registry.corp/org/*"),
		chromedp.Click(chromedp.Search(`//button[text()='Create install']`)))
	b.waitText("Install web created")
	b.do("mint", chromedp.Click(chromedp.Search(`//tr[td[1]='web']//button[text()='Mint token']`)),
		chromedp.Click(chromedp.Search(`//button[text()='Mint']`)),
		chromedp.WaitVisible(chromedp.CSS(`.once .secret`)))
	token := eval[string](b, `document.querySelector('.once .secret').value`)
	if strings.Count(token, ".") != 2 {
		t.Fatalf("minted token %q", token)
	}
	if kept := eval[string](b, `location.href + JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie`); strings.Contains(kept, token) {
		t.Error("the minted token is in the URL, storage or a cookie")
	}
	b.screenshot(out, "installs")
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err != nil {
		t.Fatalf("pull through the hub with the console's token: %v", err)
	}
	// The token is gone from the page once the operator moves on.
	b.open(base, "audit", "Audit")
	if strings.Contains(b.dom(), token) {
		t.Error("the install token is still in the page after leaving the installs view")
	}
	b.waitText("org/app")
	if n := eval[int](b, `document.querySelectorAll('svg.chart rect').length`); n == 0 {
		t.Errorf("audit charts drew no bars:\n%s", b.text())
	}
	b.open(base, "installs", "Installs")
	b.waitText("→ 200") // the last pull

	// Disable the registry with its toggle: it says what it affects, and
	// the next pull fails.
	b.open(base, "registries", "Registries")
	label := eval[string](b, `document.querySelector('button[role=switch]').getAttribute('aria-label')`)
	if !strings.Contains(label, "affects 1 install") {
		t.Errorf("toggle label %q does not say it affects 1 install", label)
	}
	// CSRF: the session cookie alone changes nothing.
	if code := pageFetch(b, "POST", "/api/v1/workspaces/acme/registries/corp/disable", false); code != 403 {
		t.Errorf("disable without the CSRF token: %d, want 403", code)
	}
	b.waitText("Enabled")
	b.do("disable", chromedp.Click(chromedp.CSS(`button[role=switch][aria-checked=true]`)))
	b.waitText("Registry corp disabled")
	b.open(base, "audit", "Audit")
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err == nil {
		t.Fatal("pull succeeded after the registry was disabled in the console")
	}
	b.waitText("credential_disabled") // live: no reload
	b.screenshot(out, "audit")
	// Filter: only refused pulls (4xx) of the install.
	b.do("filter", chromedp.SetValue(chromedp.CSS(`select[name=status]`), "4xx"),
		chromedp.SetValue(chromedp.CSS(`select[name=install]`), "web"),
		chromedp.Click(chromedp.Search(`//button[text()='Apply']`)), chromedp.Sleep(500*time.Millisecond))
	if got := eval[[]string](b, `[...document.querySelectorAll('.audit-table tbody tr td:nth-child(7)')].map((td) => td.textContent)`); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return !strings.HasPrefix(s, "403") }) {
		t.Errorf("audit filtered by status 4xx shows statuses %q", got)
	}

	// The charts of a short run: the default range is the last hour in
	// 2-minute buckets, bars wide enough to read, time axis in UTC.
	b.waitText("one bar per 2m")
	if w := eval[float64](b, `Math.min(...[...document.querySelectorAll('svg.chart rect')].map((r) => +r.getAttribute('width')))`); w < 8 {
		t.Errorf("audit charts: bars %v units wide (of 640), too thin to read", w)
	}
	if n := eval[int](b, `document.querySelectorAll('svg.chart line.tick').length`); n < 8 {
		t.Errorf("audit charts: %d time ticks on 4 charts", n)
	}
	b.do("chart range 7 days", chromedp.SetValue(chromedp.CSS(`#chart-range`), "168h"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('chart-range').dispatchEvent(new Event('change'))`))
	b.waitText("one bar per 6h")

	// Export the audit as CSV: a real download, with the header, the
	// pull, and no secret.
	dl := t.TempDir()
	b.downloadsTo(dl)
	b.do("clear the filters", chromedp.SetValue(chromedp.CSS(`select[name=status]`), ""),
		chromedp.Click(chromedp.Search(`//button[text()='Apply']`)), chromedp.Sleep(300*time.Millisecond))
	b.do("export", chromedp.Click(chromedp.Search(`//button[text()='Export CSV']`)))
	csvText := string(b.downloaded(dl, "pullgate-audit-acme.csv"))
	recs, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil || len(recs) < 3 {
		t.Fatalf("exported audit: %d records, %v:\n%s", len(recs), err, csvText)
	}
	if got := strings.Join(recs[0], ","); !strings.HasPrefix(got, "id,time,workspace,install,") {
		t.Errorf("exported audit header %q", got)
	}
	served := slices.ContainsFunc(recs[1:], func(r []string) bool {
		return slices.Contains(r, "web") && slices.Contains(r, "org/app") && slices.Contains(r, "200")
	})
	refused := slices.ContainsFunc(recs[1:], func(r []string) bool { return slices.Contains(r, "credential_disabled") })
	if !served || !refused {
		t.Errorf("exported audit lacks the served (%v) or the refused (%v) pull of web:\n%s", served, refused, csvText)
	}
	for what, v := range map[string]string{"upstream secret": secret, "install token": token, "operator's API token": operator, "admin token": admin} {
		if strings.Contains(csvText, v) {
			t.Errorf("exported audit holds the %s", what)
		}
	}

	// Enable the registry again with its toggle: pulls are served.
	b.open(base, "registries", "Registries")
	b.do("enable registry", chromedp.Click(chromedp.CSS(`button[role=switch][aria-checked=false]`)))
	b.waitText("Registry corp enabled")
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err != nil {
		t.Fatalf("pull after the registry was enabled again: %v", err)
	}
	// The install's own toggle: disabled, the next pull is refused;
	// enabled, it is served.
	b.open(base, "installs", "Installs")
	b.do("disable install", chromedp.Click(chromedp.Search(`//tr[td[1]='web']//button[@role='switch'][@aria-checked='true']`)))
	b.waitText("Install web disabled")
	if st := eval[string](b, `document.querySelector('button[role=switch]').getAttribute('aria-checked')`); st != "false" {
		t.Errorf("install toggle after disabling: aria-checked %q", st)
	}
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err == nil {
		t.Fatal("pull succeeded after the install was disabled in the console")
	}
	b.do("enable install", chromedp.Click(chromedp.Search(`//tr[td[1]='web']//button[@role='switch'][@aria-checked='false']`)))
	b.waitText("Install web enabled")
	// Disabling revoked the tokens issued before it; a new one pulls.
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err == nil {
		t.Error("a token issued before the install was disabled still pulls after it was enabled again")
	}
	b.do("mint again", chromedp.Click(chromedp.Search(`//tr[td[1]='web']//button[text()='Mint token']`)),
		chromedp.Click(chromedp.Search(`//button[text()='Mint']`)),
		chromedp.WaitVisible(chromedp.CSS(`.once .secret`)))
	token = eval[string](b, `document.querySelector('.once .secret').value`)
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err != nil {
		t.Fatalf("pull after the install was enabled again: %v", err)
	}

	// Names a tenant or a node chose stay text.
	mustAPI(t, base, admin, "POST", "/api/v1/workspaces/acme/registries", map[string]any{
		"name": "evil", "host": "evil.example", "username": xssUser, "password": "x"}, 201, nil)
	// A cluster from the console: its join token is shown once, and a
	// node enrols with it (its agent reports a hostile version).
	b.open(base, "clusters", "Clusters")
	b.do("create cluster", chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "edge"),
		chromedp.Click(chromedp.Search(`//button[text()='Create cluster']`)),
		chromedp.WaitVisible(chromedp.CSS(`.once .secret`)))
	join := eval[string](b, `document.querySelector('.once .secret').value`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := hubclient.Enrol(ctx, hub.NATS, join, wire.EnrolRequest{NodeName: "edge-1", AgentVersion: xssVersion}); err != nil {
		t.Fatalf("enrol with the console's join token: %v", err)
	}
	cancel()
	b.open(base, "registries", "Registries")
	b.waitText("evil.example")
	b.noXSS("registries")
	if !strings.Contains(b.text(), xssUser) {
		t.Errorf("registries: the username is not shown as the text it is:\n%s", b.text())
	}
	b.open(base, "clusters", "Clusters")
	b.waitText("edge-1")
	b.noXSS("clusters")
	if !strings.Contains(b.text(), xssVersion) {
		t.Errorf("clusters: the agent version is not shown as the text it is:\n%s", b.text())
	}
	b.screenshot(out, "clusters")
	// Revoke the node.
	b.do("revoke node", chromedp.Click(chromedp.Search(`//tr[td[2]='edge-1']//button[text()='Revoke']`)))
	b.waitText("Node edge-1 revoked")
	b.waitText("revoked 20")
	b.open(base, "tokens", "API tokens")
	b.waitText("console e2e")
	// A new API token is shown once; revoking it works from the list.
	b.do("create API token", chromedp.SendKeys(chromedp.CSS(`input[name=description]`), "ci"),
		chromedp.Click(chromedp.Search(`//button[text()='Create token']`)), chromedp.WaitVisible(chromedp.CSS(`.once .secret`)))
	if tok := eval[string](b, `document.querySelector('.once .secret').value`); len(tok) < 20 {
		t.Errorf("new API token %q", tok)
	}
	b.do("revoke API token", chromedp.Click(chromedp.Search(`//tr[td[3]='ci']//button[text()='Revoke']`)))
	b.waitText("revoked.")
	b.screenshot(out, "tokens")
	b.noSecret("tokens", secret)

	// The hub admin's pages: workspaces, and the members and activity of
	// acme (olga's actions are in it).
	ad := newBrowser(t)
	ad.login(base, admin)
	ad.waitText("hub admin")
	ad.open(base, "workspaces", "Workspaces")
	ad.waitText("beta")
	// Create a workspace and delete it: the delete asks first, and a
	// Cancel keeps it.
	ad.do("create workspace", chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "gamma"),
		chromedp.Click(chromedp.Search(`//button[text()='Create']`)))
	ad.waitText("Workspace gamma created")
	ad.do("gamma listed", chromedp.WaitVisible(chromedp.Search(`//tr[td[1]='gamma']`)))
	if opts := eval[[]string](ad, `[...document.querySelectorAll('#ws option')].map((o) => o.value)`); !slices.Contains(opts, "gamma") {
		t.Errorf("the workspace picker lacks the new workspace: %q", opts)
	}
	ad.cancelNext()
	ad.do("delete gamma, cancelled", chromedp.Click(chromedp.Search(`//tr[td[1]='gamma']//button[text()='Delete']`)), chromedp.Sleep(300*time.Millisecond))
	if d := ad.lastDialog(); !strings.Contains(d, "Delete workspace gamma") {
		t.Errorf("deleting a workspace asked %q, not for confirmation", d)
	}
	if code := apiCall(t, base, admin, "GET", "/api/v1/workspaces/gamma", nil, nil); code != 200 {
		t.Errorf("workspace gamma after a cancelled delete: %d", code)
	}
	ad.do("delete gamma", chromedp.Click(chromedp.Search(`//tr[td[1]='gamma']//button[text()='Delete']`)))
	ad.waitText("Workspace gamma deleted")
	if n := eval[int](ad, `[...document.querySelectorAll('main td:first-child')].filter((td) => td.textContent === 'gamma').length`); n != 0 {
		t.Error("workspace gamma is still listed after its delete")
	}
	if code := apiCall(t, base, admin, "GET", "/api/v1/workspaces/gamma", nil, nil); code != 404 {
		t.Errorf("workspace gamma after its delete: %d", code)
	}
	// A workspace in use is not deleted: the API's error says what it holds.
	ad.do("delete acme", chromedp.Click(chromedp.Search(`//tr[td[1]='acme']//button[text()='Delete']`)))
	ad.waitText(`workspace "acme" still has`)
	if code := apiCall(t, base, admin, "GET", "/api/v1/workspaces/acme/installs/web", nil, nil); code != 200 {
		t.Fatalf("install web after the refused workspace delete: %d", code)
	}
	ad.screenshot(out, "workspaces")
	ad.open(base, "members", "Members")
	ad.waitText("registry.disable")
	ad.do("add member", chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "mia"),
		chromedp.Click(chromedp.Search(`//button[text()='Add member']`)))
	ad.waitText("mia added as viewer")
	ad.screenshot(out, "members")
	ad.noSecret("members", secret)
	for _, r := range ad.responses() {
		if strings.Contains(r, secret) {
			url, _, _ := strings.Cut(r, "\n")
			t.Errorf("the upstream secret is in the response of %s", url)
		}
	}

	t.Run("viewer", func(t *testing.T) { viewerCannotChange(t, base, viewer) })
	t.Run("other workspace", func(t *testing.T) { outsiderSeesNothing(t, base, outsider) })

	// Delete the install from the console: asked first, and its token
	// stops working at once.
	b.open(base, "installs", "Installs")
	b.do("delete install", chromedp.Click(chromedp.Search(`//tr[td[1]='web']//button[text()='Delete']`)))
	b.waitText("Install web deleted")
	if d := b.lastDialog(); !strings.Contains(d, "Delete install web") {
		t.Errorf("deleting an install asked %q", d)
	}
	if err := pull(hub.Addr, token, "registry.corp/org/app:v1"); err == nil {
		t.Error("pull succeeded with the token of the deleted install")
	}

	// The secret typed into the form is in no response, log or file.
	for _, r := range b.responses() {
		if strings.Contains(r, secret) {
			url, _, _ := strings.Cut(r, "\n")
			t.Errorf("the upstream secret is in the response of %s", url)
		}
	}
	if len(b.responses()) < 10 {
		t.Errorf("only %d response bodies captured: the leak check saw too little", len(b.responses()))
	}
	if strings.Contains(hub.Log.String(), secret) {
		t.Error("the upstream secret is in the hub's log")
	}
	_ = filepath.WalkDir(hub.Data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err == nil && bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the upstream secret is in %s", p)
		}
		return nil
	})

	wall := time.Since(began)
	report := fmt.Sprintf("console first load: %.0f bytes over the wire\noperator suite wall time: %s\nscreenshots: %s\n", weight, wall.Round(time.Millisecond), out)
	t.Log(report)
	if err := os.WriteFile(filepath.Join(out, "metrics.txt"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
}
