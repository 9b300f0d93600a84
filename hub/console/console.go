// Package console is the hub's web console: hand-written HTML, CSS and
// small vanilla JavaScript modules, embedded in the binary and served at
// "/". It holds no state and no secret; every action is a call of the
// operator API under /api/v1/ from the browser, authenticated by the
// session cookie that POST /api/v1/session sets for the token pasted at
// login (which the page does not keep).
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// AssetPrefix is the path prefix of the console's static files.
const AssetPrefix = "/assets/"

// Handler serves the console: "/" is the page, AssetPrefix its files.
// Anything else is 404, so that mounting it at "/" claims no path another
// handler (the API, the registry proxy, health checks) should answer.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // cannot happen: the directory is embedded
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		switch {
		case p == "/" || p == "/index.html":
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, sub, "index.html")
		case strings.HasPrefix(p, AssetPrefix) && isAsset(sub, strings.TrimPrefix(p, AssetPrefix)):
			// Revalidated every time: a new hub binary may change them,
			// and they are small.
			w.Header().Set("Cache-Control", "no-cache")
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + strings.TrimPrefix(p, AssetPrefix)
			files.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

// isAsset reports whether name is a file (not a directory: no listings)
// of the embedded assets.
func isAsset(fsys fs.FS, name string) bool {
	name = path.Clean(name)
	if name == "." || name == "index.html" || !fs.ValidPath(name) {
		return false
	}
	fi, err := fs.Stat(fsys, name)
	return err == nil && !fi.IsDir()
}
