//go:build e2e_console

package console

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// memberToken adds user to ws with role (as the hub admin) and creates
// the user's first API token.
func memberToken(t *testing.T, base, admin, ws, user, role string) string {
	t.Helper()
	mustAPI(t, base, admin, "POST", "/api/v1/workspaces/"+ws+"/members", map[string]string{"user": user, "role": role}, 201, nil)
	var tok struct {
		Token string `json:"token"`
	}
	mustAPI(t, base, admin, "POST", "/api/v1/tokens", map[string]string{"user": user, "description": "console e2e"}, 201, &tok)
	if tok.Token == "" {
		t.Fatalf("no token for %s", user)
	}
	return tok.Token
}

// pageFetch sends a request from the page (same origin, the session
// cookie), with or without the CSRF token, and returns the status.
func pageFetch(b *browser, method, path string, csrf bool) int {
	js := `(async () => {
  const headers = {'Content-Type': 'application/json'};
  ` + map[bool]string{true: `const s = await (await fetch('/api/v1/session')).json(); headers['X-CSRF-Token'] = s.csrf_token;`, false: ``}[csrf] + `
  const r = await fetch(` + jsString(path) + `, {method: ` + jsString(method) + `, headers, body: ` + map[bool]string{true: `'{}'`, false: `undefined`}[method != "GET"] + `});
  return r.status;
})()`
	return eval[int](b, js, chromedp.EvalAwaitPromise)
}

func jsString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}

// checkSessionCookie: the session is an HttpOnly, SameSite=Strict cookie
// that scripts cannot read.
func checkSessionCookie(t *testing.T, b *browser) {
	t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range res.Cookies {
		if c.Name != "pullgate_session" {
			continue
		}
		found = true
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
			t.Errorf("session cookie: HttpOnly %v SameSite %q, want HttpOnly and Strict", c.HTTPOnly, c.SameSite)
		}
	}
	if !found {
		t.Error("no pullgate_session cookie after login")
	}
	if c := eval[string](b, `document.cookie`); strings.Contains(c, "pullgate_session") {
		t.Errorf("document.cookie shows the session: %q", c)
	}
}

// viewerCannotChange: a viewer sees the workspace without controls that
// change it, and the API refuses the change when the viewer's page sends
// it anyway.
func viewerCannotChange(t *testing.T, base, token string) {
	b := newBrowser(t)
	b.login(base, token)
	b.waitText("viewer")
	b.open(base, "registries", "Registries")
	b.waitText("corp")
	if n := eval[int](b, `document.querySelectorAll('input[name=password], main button[type=submit]').length`); n != 0 {
		t.Errorf("viewer: %d forms to add registries", n)
	}
	if n := eval[int](b, `[...document.querySelectorAll('main button')].filter((x) => !x.disabled && /Disable|Enable|Delete|Rotate/.test(x.textContent + (x.getAttribute('aria-label') || ''))).length`); n != 0 {
		t.Errorf("viewer: %d enabled controls that change registries", n)
	}
	b.screenshot(shots(t), "viewer-registries")
	b.open(base, "installs", "Installs")
	b.waitText("web")
	if n := eval[int](b, `[...document.querySelectorAll('main button')].filter((x) => !x.disabled && /Mint|Delete|Create/.test(x.textContent)).length`); n != 0 {
		t.Errorf("viewer: %d enabled controls that change installs", n)
	}
	for _, path := range []string{"/api/v1/workspaces/acme/registries/corp/enable", "/api/v1/workspaces/acme/installs/web/tokens"} {
		if code := pageFetch(b, "POST", path, true); code != 403 {
			t.Errorf("viewer POST %s from the page: %d, want 403", path, code)
		}
	}
	b.open(base, "audit", "Audit")
	b.waitText("org/app") // viewers read the audit
}

// outsiderSeesNothing: a member of another workspace sees nothing of acme,
// neither in its pages nor by asking the API from its page.
func outsiderSeesNothing(t *testing.T, base, token string) {
	b := newBrowser(t)
	b.login(base, token)
	b.open(base, "registries", "Registries")
	if opts := eval[[]string](b, `[...document.querySelectorAll('#ws option')].map((o) => o.value)`); len(opts) != 1 || opts[0] != "beta" {
		t.Errorf("outsider: workspace choices %q, want only beta", opts)
	}
	for section, heading := range map[string]string{"registries": "Registries", "installs": "Installs", "clusters": "Clusters", "audit": "Audit"} {
		b.open(base, section, heading)
		if section == "audit" {
			b.screenshot(shots(t), "other-workspace-audit")
		}
		text := b.text()
		for _, leak := range []string{"corp", "registry.corp", "org/app", "edge-1", "acme"} {
			if strings.Contains(text, leak) {
				t.Errorf("outsider's %s page shows %q of workspace acme", section, leak)
			}
		}
	}
	for _, path := range []string{"/api/v1/workspaces/acme/registries", "/api/v1/workspaces/acme/installs", "/api/v1/audit?workspace=acme",
		"/api/v1/audit/stats?workspace=acme", "/api/v1/audit/export?workspace=acme"} {
		if code := pageFetch(b, "GET", path, false); code != 404 {
			t.Errorf("outsider GET %s: %d, want 404", path, code)
		}
	}
	n := eval[int](b, `(async () => (await (await fetch('/api/v1/audit')).json()).events.filter((e) => e.workspace === 'acme').length)()`, chromedp.EvalAwaitPromise)
	if n != 0 {
		t.Errorf("outsider's unfiltered audit holds %d events of acme", n)
	}
}
