package testupstream

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullgate/pullgate/internal/httprec"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cdnURLTTL is how long a signed CDN URL stays valid.
const cdnURLTTL = time.Minute

// CDN is a fake blob CDN on 127.0.0.1 that an in-process registry started
// WithBlobRedirect sends blob downloads to. Like S3 or CloudFront it
// authorizes by a signed, expiring query string and answers 400 to any
// request that also carries an Authorization header.
type CDN struct {
	// URL is "http://127.0.0.1:PORT".
	URL string

	key          []byte
	blobs        registry.BlobHandler
	reqLog       requestLog
	rejectedAuth atomic.Int64
}

func startCDN(t testing.TB, blobs registry.BlobHandler) *CDN {
	t.Helper()
	c := &CDN{key: make([]byte, 32), blobs: blobs}
	if _, err := rand.Read(c.key); err != nil {
		t.Fatalf("testupstream: generating CDN signing key: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// Requests returns how many requests the CDN has received.
func (c *CDN) Requests() int { return c.reqLog.len() }

// RejectedAuth returns how many requests the CDN refused because they
// carried an Authorization header, i.e. leaked upstream credentials.
func (c *CDN) RejectedAuth() int { return int(c.rejectedAuth.Load()) }

// Log returns every request the CDN has received.
func (c *CDN) Log() []LoggedRequest { return c.reqLog.snapshot() }

// ResetLog clears the request log and counters.
func (c *CDN) ResetLog() {
	c.reqLog.reset()
	c.rejectedAuth.Store(0)
}

// redirect answers a registry blob GET with a 307 to a signed CDN URL. It
// returns false, writing nothing, when req is not a blob download or the
// blob does not exist (so the registry answers it).
func (c *CDN) redirect(w http.ResponseWriter, req *http.Request) bool {
	repo, h, ok := blobFromPath(req.URL.Path)
	if !ok {
		return false
	}
	if st, ok := c.blobs.(registry.BlobStatHandler); ok {
		if _, err := st.Stat(req.Context(), repo, h); err != nil {
			return false
		}
	}
	http.Redirect(w, req, c.signedURL(repo, h, time.Now().Add(cdnURLTTL)), http.StatusTemporaryRedirect)
	return true
}

func (c *CDN) signedURL(repo string, h v1.Hash, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := url.Values{
		"repo":    {repo},
		"expires": {exp},
		"sig":     {c.sign(repo, h, exp)},
	}
	return c.URL + "/blobs/" + h.String() + "?" + q.Encode()
}

func (c *CDN) sign(repo string, h v1.Hash, expires string) string {
	m := hmac.New(sha256.New, c.key)
	fmt.Fprintf(m, "%s\n%s\n%s", repo, h, expires)
	return hex.EncodeToString(m.Sum(nil))
}

func (c *CDN) serve(w http.ResponseWriter, req *http.Request) {
	rec := &httprec.Recorder{ResponseWriter: w, Status: http.StatusOK}
	defer func() { c.reqLog.add(req, rec.Status) }()

	if req.Header.Get("Authorization") != "" {
		c.rejectedAuth.Add(1)
		http.Error(rec, "InvalidArgument: only one auth mechanism allowed; "+
			"signed URL given, Authorization header must not be sent", http.StatusBadRequest)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(rec, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h, err := v1.NewHash(strings.TrimPrefix(req.URL.Path, "/blobs/"))
	if err != nil {
		http.Error(rec, "no such blob", http.StatusNotFound)
		return
	}
	if err := c.verify(req.URL.Query(), h); err != nil {
		http.Error(rec, "AccessDenied: "+err.Error(), http.StatusForbidden)
		return
	}
	rc, err := c.blobs.Get(req.Context(), req.URL.Query().Get("repo"), h)
	if errors.Is(err, registry.ErrNotFound) {
		http.Error(rec, "no such blob", http.StatusNotFound)
		return
	} else if err != nil {
		http.Error(rec, err.Error(), http.StatusInternalServerError)
		return
	}
	defer rc.Close()

	rec.Header().Set("Content-Type", "application/octet-stream")
	rec.Header().Set("ETag", `"`+h.Hex+`"`)
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(rec, req, "", time.Time{}, rs) // handles Range
		return
	}
	if req.Method == http.MethodGet {
		_, _ = io.Copy(rec, rc)
	}
}

// verify checks a signed URL's signature and expiry.
func (c *CDN) verify(q url.Values, h v1.Hash) error {
	exp := q.Get("expires")
	want := c.sign(q.Get("repo"), h, exp)
	if !hmac.Equal([]byte(want), []byte(q.Get("sig"))) {
		return errors.New("signature does not match")
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad expires %q: %w", exp, err)
	}
	if time.Now().After(time.Unix(secs, 0)) {
		return errors.New("request has expired")
	}
	return nil
}

// blobFromPath parses a blob download path, /v2/<repo>/blobs/<digest>.
func blobFromPath(p string) (repo string, h v1.Hash, ok bool) {
	rest := strings.Trim(strings.TrimPrefix(p, "/v2"), "/")
	i := strings.LastIndex(rest, "/blobs/")
	if i <= 0 {
		return "", v1.Hash{}, false
	}
	h, err := v1.NewHash(rest[i+len("/blobs/"):])
	if err != nil {
		return "", v1.Hash{}, false
	}
	return rest[:i], h, true
}
