// Package console holds the browser suite of the hub's web console
// (build tag e2e_console, `make e2e-console`): a real hub process, a real
// upstream registry with token auth, and headless Chromium driven over the
// DevTools protocol (chromedp) doing what an operator does.
package console
