//go:build e2e_console

package console

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pullgate/pullgate/internal/e2eproc"
	"github.com/pullgate/pullgate/pkg/akash"
)

// Public test keys (issue 15 research notes) and their addresses.
const (
	tenantKeyA  = "a267fb03b3e6dc381550ea0257ace31433698f16248ba111dfb75550364d31fe"
	tenantAddrA = "akash1m9l358xunhhwds0568za49mzhvuxx9uxwzev9h"
	tenantKeyB  = "ef1450bdc18396f2254f52d8c525c0d933a8f146ec2a681eaf319f5899f2f60d"
	tenantAddrB = "akash10h9stc5v6ntgeygf5xf945njqq5h32r5u8dm45"
)

// keplrCall is one signArbitrary call the fake wallet received.
type keplrCall struct {
	Enabled string `json:"enabled"` // the chain id enable() was called with
	ChainID string `json:"chainId"`
	Signer  string `json:"signer"`
	Data    string `json:"data"`
}

// fakeKeplr gives every page of b a window.keplr whose signArbitrary
// hands the request to this test (a runtime binding), which signs it with
// keyHex as the wallet would (pkg/akash.Sign: RFC 6979, low S) and
// resolves the page's promise. Call it before the first navigation.
func (b *browser) fakeKeplr(keyHex string) func() []keplrCall {
	b.t.Helper()
	var mu sync.Mutex
	var calls []keplrCall
	if _, err := chromedp.Call(b.ctx, runtime.AddBinding, runtime.AddBindingParams{Name: "pullgateKeplrSign"}); err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.keplr = {
  enable: async (chainId) => { window.__keplrEnabled = chainId; },
  signArbitrary: (chainId, signer, data) => new Promise((resolve, reject) => {
    window.__keplrResolve = resolve;
    window.__keplrReject = reject;
    pullgateKeplrSign(JSON.stringify({ enabled: window.__keplrEnabled || '', chainId, signer, data }));
  }),
};`,
	}); err != nil {
		b.t.Fatal(err)
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		b.t.Fatal(err)
	}
	events := chromedp.Events(b.ctx, runtime.BindingCalled)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if ev.Name != "pullgateKeplrSign" {
				continue
			}
			var c keplrCall
			answer := `window.__keplrReject(new Error('fake wallet: bad request'))`
			if json.Unmarshal([]byte(ev.Payload), &c) == nil {
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				if pub, sig, err := akash.Sign(key, c.Signer, []byte(c.Data)); err == nil {
					res, _ := json.Marshal(map[string]any{
						"pub_key":   map[string]string{"type": "tendermint/PubKeySecp256k1", "value": base64.StdEncoding.EncodeToString(pub)},
						"signature": base64.StdEncoding.EncodeToString(sig),
					})
					answer = `window.__keplrResolve(` + string(res) + `)`
				} else {
					answer = `window.__keplrReject(new Error(` + jsString("fake wallet: "+err.Error()) + `))`
				}
			}
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			_, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`(`+answer+`, true)`))
			cancel()
		}
	}()
	return func() []keplrCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]keplrCall(nil), calls...)
	}
}

func TestConsoleAkashTenant(t *testing.T) {
	hub := e2eproc.StartHubWith(t, t.TempDir(), func(addr string) []string {
		return []string{"--akash-tenants", "--public-url", "http://" + addr}
	})
	base := "http://" + hub.Addr
	out := shots(t)

	// Keplr: the tenant types its address and a workspace name and lets
	// the wallet sign.
	b := newBrowser(t)
	calls := b.fakeKeplr(tenantKeyA)
	b.do("open the login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=akash-address]`)))
	b.screenshot(out, "login-akash")
	b.accessible("login page with the Akash section")
	b.do("sign with Keplr",
		chromedp.SendKeys(chromedp.CSS(`input[name=akash-address]`), tenantAddrA),
		chromedp.SendKeys(chromedp.CSS(`input[name=akash-workspace]`), "tenant-a"),
		chromedp.Click(chromedp.Search(`//button[text()='Sign with Keplr']`)),
		chromedp.WaitVisible(chromedp.ID("nav")))
	b.waitText(tenantAddrA + " (owner)")
	b.waitText("Registries")
	if h := eval[string](b, `location.hash`); h != "#/registries" {
		t.Errorf("after the Keplr login the page is %q, want #/registries", h)
	}
	if ws := eval[string](b, `document.getElementById('ws').value`); ws != "tenant-a" {
		t.Errorf("workspace picker shows %q, want tenant-a", ws)
	}
	if n := eval[int](b, `document.getElementById('ws').options.length`); n != 1 {
		t.Errorf("the tenant sees %d workspaces, want its own only", n)
	}
	got := calls()
	if len(got) != 1 {
		t.Fatalf("the wallet was asked %d times, want once: %+v", len(got), got)
	}
	c := got[0]
	if c.Enabled != "akashnet-2" || c.ChainID != "akashnet-2" || c.Signer != tenantAddrA ||
		!strings.HasPrefix(c.Data, "pullgate login\nhub: "+base+"\naddress: "+tenantAddrA+"\nnonce: ") {
		t.Errorf("signArbitrary call %+v", c)
	}
	// The minted token went into the session and nowhere else.
	if kept := eval[string](b, `document.documentElement.outerHTML + JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie + location.href`); strings.Contains(kept, "pgu_") {
		t.Error("the login token is kept by the page (DOM, storage, cookie or URL)")
	}
	checkSessionCookie(t, b)
	b.noXSS("after the Keplr login")
	b.screenshot(out, "akash-registries")

	// Without Keplr: the message is shown, the wallet's JSON is pasted.
	b2 := newBrowser(t)
	b2.do("open the login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=akash-address]`)))
	if vis := eval[bool](b2, `[...document.querySelectorAll('button')].some((e) => e.textContent === 'Sign with Keplr' && !e.hidden)`); vis {
		t.Error("the Keplr button shows in a browser without Keplr")
	}
	b2.do("ask for the message",
		chromedp.SendKeys(chromedp.CSS(`input[name=akash-address]`), tenantAddrB),
		chromedp.Click(chromedp.Search(`//button[text()='Show the message to sign']`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.akash-message`)))
	msg := eval[string](b2, `document.querySelector('pre.akash-message').textContent`)
	if !strings.HasPrefix(msg, "pullgate login\nhub: "+base+"\naddress: "+tenantAddrB+"\n") {
		t.Fatalf("message shown %q", msg)
	}
	b2.screenshot(out, "akash-paste")
	kb, _ := hex.DecodeString(tenantKeyB)
	pub, sig, err := akash.Sign(kb, tenantAddrB, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	answer := `{"pub_key":{"type":"tendermint/PubKeySecp256k1","value":"` + base64.StdEncoding.EncodeToString(pub) + `"},"signature":"` + base64.StdEncoding.EncodeToString(sig) + `"}`
	b2.do("paste the wallet's answer",
		chromedp.SendKeys(chromedp.CSS(`textarea[name=akash-answer]`), answer),
		chromedp.Click(chromedp.Search(`//button[text()='Log in with the signature']`)),
		chromedp.WaitVisible(chromedp.ID("nav")))
	b2.waitText(tenantAddrB + " (owner)")
	b2.waitText("Registries")
	if ws := eval[string](b2, `document.getElementById('ws').value`); ws != "akash-0h9stc5v6n" {
		t.Errorf("workspace %q, want the default akash-0h9stc5v6n", ws)
	}
	b2.noXSS("after the pasted login")

	// A wrong signature is refused with the hub's message, on the page.
	b3 := newBrowser(t)
	b3.do("ask for the message",
		chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=akash-address]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=akash-address]`), tenantAddrA),
		chromedp.Click(chromedp.Search(`//button[text()='Show the message to sign']`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.akash-message`)),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=akash-answer]`), answer), // B's signature of another message
		chromedp.Click(chromedp.Search(`//button[text()='Log in with the signature']`)))
	b3.waitText("not of " + tenantAddrA)
	if vis := eval[bool](b3, `!document.getElementById('nav').hidden`); vis {
		t.Error("a refused signature opened the console")
	}
}
