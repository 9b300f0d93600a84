// Package sdl reads Akash deployments (SDL v2.0, v2.1 and v2.2 YAML, and the
// provider's manifest JSON) for what pullgate needs from them: each
// service's image and registry credentials. It validates the credentials
// as Akash does (host, username and password required) with errors that
// name the service, the field and, for YAML, the line; imports them as hub
// state (Importer); and rewrites the document so that private images are
// pulled through the hub without any credentials block (Rewrite).
//
// Passwords are held only in Credentials.Password, which never formats,
// and never appear in an error, a report or a rewritten document.
package sdl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/pullgate/pullgate/pkg/imageref"
)

// MaxBytes bounds an SDL or manifest.
const MaxBytes = 512 << 10

// MaxServices bounds the services of one document.
const MaxServices = 256

// maxErrors bounds the problems one Error lists.
const maxErrors = 20

// Formats of a Document.
const (
	FormatSDL      = "sdl"
	FormatManifest = "manifest"
)

// Versions are the SDL versions understood. As Akash's own parser does,
// a version is read leniently ("2", "v2.1", "2.1.3"): 2.0 exactly, any
// 2.1.x as 2.1, any 2.2.x as 2.2. The versions differ in profiles and
// pricing, not in services' images or credentials.
var Versions = []string{"2.0", "2.1", "2.2"}

// maxMergedFields bounds the fields YAML merge keys (<<) may expand one
// mapping to: merges of merges of lists fan out.
const maxMergedFields = 4096

// Document is a parsed SDL or manifest.
type Document struct {
	Format   string // FormatSDL or FormatManifest
	Version  string // SDL version; "" for a manifest
	Services []*Service

	src  []byte
	root *yaml.Node // SDL: the document node
	man  []any      // manifest: generic JSON, for Rewrite
}

// Service is one service of a document.
type Service struct {
	Name  string
	Group string // manifest group; "" for an SDL
	Image string
	// Credentials is nil for a public image.
	Credentials *Credentials
	// Repo and Ref are the image's repository and tag or digest; set for
	// services with credentials.
	Repo imageref.Repo
	Ref  string
	// Tag is the tag of an image named by tag and digest (app:1.0@sha256:...),
	// whose Ref is the digest; "" otherwise.
	Tag string

	line      int        // of the service's key
	imageNode *yaml.Node // SDL only
	credKey   *yaml.Node // SDL only
	// imageMerged and credMerged: SDL only, the image or credentials come
	// through a merge key (<<), not from the service's own mapping.
	imageMerged, credMerged bool
	mapping                 *yaml.Node // SDL only: the service's mapping
	manIndex                [2]int     // manifest: group and service index
}

// Credentials is a service's credentials block. Host is normalised
// (https://index.docker.io/v1/ is docker.io).
type Credentials struct {
	Host     string
	Email    string
	Username string
	Password string

	line int // of the credentials key
}

// String hides the password.
func (c Credentials) String() string {
	return "sdl.Credentials{" + c.Host + " " + c.Username + " REDACTED}"
}

// GoString hides the password.
func (c Credentials) GoString() string { return c.String() }

// LogValue hides the password.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.String("username", c.Username))
}

// MarshalJSON hides the password.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"host": c.Host, "username": c.Username})
}

// Problem is one thing wrong with a document: where (a path such as
// services.web.credentials.password, and the YAML line when known) and
// what. It never quotes a password.
type Problem struct {
	Path string `json:"path"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.Path == "":
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Msg)
	}
	return p.Path + ": " + p.Msg
}

// Error is an invalid document: every problem found (up to a bound).
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		parts = append(parts, p.String())
	}
	return "invalid " + strings.Join(parts, "; ")
}

// problems collects Problems.
type problems struct{ list []Problem }

func (ps *problems) add(path string, line int, format string, args ...any) {
	if len(ps.list) < maxErrors {
		ps.list = append(ps.list, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &Error{Problems: ps.list}
}

func invalid(path string, line int, format string, args ...any) error {
	var ps problems
	ps.add(path, line, format, args...)
	return ps.err()
}

// Parse reads an SDL (YAML) or, when the document is a JSON array, a
// provider manifest.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxBytes {
		return nil, invalid("", 0, "document is %d bytes; the limit is %d (512 KiB)", len(data), MaxBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, invalid("", 0, "document is empty")
	}
	if trimmed[0] == '[' {
		return ParseManifest(data)
	}
	return ParseSDL(data)
}

// ParseSDL reads an Akash SDL v2.0 or v2.1.
func ParseSDL(data []byte) (*Document, error) {
	if len(data) > MaxBytes {
		return nil, invalid("", 0, "SDL is %d bytes; the limit is %d (512 KiB)", len(data), MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalid("", 0, "SDL is empty")
		}
		return nil, invalid("", 0, "not valid YAML: %s", yamlMsg(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalid("", extra.Line, "more than one YAML document; an SDL is one")
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, invalid("", 0, "SDL is empty")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, invalid("", top.Line, "top level: want a mapping (version, services, profiles, deployment), got %s", kindName(top))
	}
	doc := &Document{Format: FormatSDL, src: data, root: &root}
	var ps problems
	fields := mapping(top, "", &ps)
	for _, f := range fields {
		switch {
		case f.key == "version", f.key == "services", f.key == "profiles", f.key == "deployment", f.key == "endpoints",
			f.key == "include", f.key == "reclamation":
		case isExtension(f.key):
			// x-...: an extension (anchors for the rest of the SDL), ignored.
		default:
			ps.add(f.key, f.keyNode.Line, "unexpected field (an SDL has version, services, profiles, deployment, endpoints, and x- extensions)")
		}
	}
	v, ok := lookup(fields, "version")
	switch {
	case !ok:
		ps.add("version", top.Line, "missing (want \"2.0\", \"2.1\" or \"2.2\")")
	case v.val.Kind != yaml.ScalarNode:
		ps.add("version", v.val.Line, "want a string, got %s", kindName(v.val))
	default:
		if ver, ok := sdlVersion(v.val.Value); ok {
			doc.Version = ver
		} else {
			ps.add("version", v.val.Line, "%q: pullgate reads SDL versions 2.0, 2.1 and 2.2", clip(v.val.Value))
		}
	}
	s, ok := lookup(fields, "services")
	switch {
	case !ok:
		ps.add("services", top.Line, "missing")
	case s.val.Kind != yaml.MappingNode:
		ps.add("services", s.val.Line, "want a mapping of service names to services, got %s", kindName(s.val))
	default:
		svcs := mergedMapping(s.val, "services", &ps)
		if len(svcs) == 0 {
			ps.add("services", s.val.Line, "no services")
		}
		if len(svcs) > MaxServices {
			ps.add("services", s.val.Line, "%d services; at most %d", len(svcs), MaxServices)
			svcs = svcs[:MaxServices]
		}
		for _, f := range svcs {
			if svc := parseService(f, &ps); svc != nil {
				doc.Services = append(doc.Services, svc)
			}
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return doc, nil
}

func parseService(f field, ps *problems) *Service {
	path := "services." + f.key
	if f.key == "" {
		ps.add("services", f.keyNode.Line, "a service has an empty name")
		return nil
	}
	if f.val.Kind != yaml.MappingNode {
		ps.add(path, f.val.Line, "want a mapping (image, expose, credentials, ...), got %s", kindName(f.val))
		return nil
	}
	svc := &Service{Name: f.key, line: f.keyNode.Line, mapping: f.val}
	fields := mergedMapping(f.val, path, ps)
	img, ok := lookup(fields, "image")
	switch {
	case !ok:
		ps.add(path+".image", f.keyNode.Line, "missing")
	case img.val.Kind != yaml.ScalarNode || img.val.Tag == "!!null":
		ps.add(path+".image", img.val.Line, "want a string, got %s", kindName(img.val))
	default:
		svc.Image, svc.imageNode, svc.imageMerged = strings.TrimSpace(img.val.Value), img.val, img.merged
		if svc.Image == "" {
			ps.add(path+".image", img.val.Line, "empty")
		}
	}
	c, ok := lookup(fields, "credentials")
	if !ok || (c.val.Kind == yaml.ScalarNode && c.val.Tag == "!!null") {
		return svc
	}
	svc.credKey, svc.credMerged = c.keyNode, c.merged
	cpath := path + ".credentials"
	if c.val.Kind != yaml.MappingNode {
		ps.add(cpath, c.val.Line, "want a mapping with host, username and password, got %s", kindName(c.val))
		return svc
	}
	cred := &Credentials{line: c.keyNode.Line}
	for _, cf := range mergedMapping(c.val, cpath, ps) {
		fp := cpath + "." + cf.key
		var dst *string
		if isExtension(cf.key) {
			continue
		}
		switch cf.key {
		case "host":
			dst = &cred.Host
		case "email":
			dst = &cred.Email
		case "username":
			dst = &cred.Username
		case "password":
			dst = &cred.Password
		default:
			ps.add(fp, cf.keyNode.Line, "unexpected field (credentials have host, email, username, password and x- extensions)")
			continue
		}
		switch {
		case cf.val.Kind == yaml.ScalarNode && cf.val.Tag == "!!null":
		case cf.val.Kind != yaml.ScalarNode:
			ps.add(fp, cf.val.Line, "want a string, got %s", kindName(cf.val))
		default:
			*dst = cf.val.Value
		}
	}
	checkCredentials(svc, cred, cpath, cred.line, ps)
	return svc
}

// checkCredentials validates a credentials block as Akash does (host,
// username and password required), normalises the host and checks that
// the image is on that host.
func checkCredentials(svc *Service, cred *Credentials, path string, line int, ps *problems) {
	before := len(ps.list)
	if strings.TrimSpace(cred.Host) == "" {
		ps.add(path+".host", line, "missing (Akash requires host, username and password)")
	}
	if strings.TrimSpace(cred.Username) == "" {
		ps.add(path+".username", line, "missing (Akash requires host, username and password)")
	}
	if strings.TrimSpace(cred.Password) == "" {
		ps.add(path+".password", line, "missing (Akash requires host, username and password)")
	}
	if len(ps.list) != before {
		return
	}
	if len(cred.Username) > 256 || strings.IndexFunc(cred.Username, unicode.IsControl) >= 0 {
		ps.add(path+".username", line, "longer than 256 bytes or contains control characters")
	}
	if len(cred.Password) > 64<<10 {
		ps.add(path+".password", line, "longer than 64 KiB")
	}
	host, err := imageref.CanonicalHost(cred.Host)
	if err != nil {
		ps.add(path+".host", line, "%v", err)
		return
	}
	// The SDL is the tenant's: its host must not point the hub into its
	// own network (IP literals, localhost, site-local and single-label
	// names). Credentials from an SDL never get the private-network
	// allowance, so the dial-time check covers names resolving there.
	if err := imageref.CheckPublicHost(host); err != nil {
		ps.add(path+".host", line, "%v", err)
		return
	}
	cred.Host = host
	svc.Credentials = cred
	if svc.Image == "" {
		return
	}
	repo, ref, err := imageref.ParseImage(svc.Image)
	if err != nil {
		ps.add(strings.TrimSuffix(path, ".credentials")+".image", svc.imageLine(line), "%v", err)
		return
	}
	if repo.Host != host {
		ps.add(strings.TrimSuffix(path, ".credentials")+".image", svc.imageLine(line),
			"image %q is on %s but credentials.host is %s: the credentials would not apply to it", clip(svc.Image), repo.Host, host)
		return
	}
	svc.Repo, svc.Ref, svc.Tag = repo, ref, tagWithDigest(svc.Image, ref)
}

// tagWithDigest is the tag of an image named by tag and digest
// ("app:1.0@sha256:..."), which the reference parser drops: a rewrite
// keeps it for the reader (the digest decides what is pulled).
func tagWithDigest(image, ref string) string {
	base, _, ok := strings.Cut(image, "@")
	if !ok || !strings.Contains(ref, ":") {
		return ""
	}
	slash := strings.LastIndexByte(base, '/')
	if colon := strings.LastIndexByte(base, ':'); colon > slash {
		return base[colon+1:]
	}
	return ""
}

// isExtension reports an x- extension key, which Akash's tooling and
// compose-style SDLs use for anchors.
func isExtension(key string) bool { return strings.HasPrefix(key, "x-") }

// sdlVersion reads an SDL version as Akash does (semver, tolerant: an
// optional "v", missing parts are 0) and names the schema it selects.
func sdlVersion(v string) (string, bool) {
	v = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(v), "v"), "V")
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return "", false
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || len(p) > 6 || strings.Trim(p, "0123456789") != "" {
			return "", false
		}
		for _, c := range p {
			n[i] = n[i]*10 + int(c-'0')
		}
	}
	switch {
	case n[0] != 2:
		return "", false
	case n[1] == 0 && n[2] == 0:
		return "2.0", true
	case n[1] == 1:
		return "2.1", true
	case n[1] == 2:
		return "2.2", true
	}
	return "", false
}

func (s *Service) imageLine(def int) int {
	if s.imageNode != nil {
		return s.imageNode.Line
	}
	return def
}

// field is one key/value of a YAML mapping (aliases resolved).
type field struct {
	key     string
	keyNode *yaml.Node
	val     *yaml.Node
	merged  bool // from a merge key (<<), not the mapping's own
}

// mergedMapping lists a mapping's fields with YAML merge keys (<<)
// applied as yaml.v3 (and so Akash) decodes them: the mapping's own
// fields first, then those of the merged mappings that it does not define,
// earlier merged mappings before later ones, merges of merges included.
func mergedMapping(n *yaml.Node, path string, ps *problems) []field {
	budget := maxMergedFields
	return mergeInto(n, path, ps, 0, &budget)
}

func mergeInto(n *yaml.Node, path string, ps *problems, depth int, budget *int) []field {
	var own, merges []field
	for _, f := range mapping(n, path, ps) {
		if f.key == "<<" && f.keyNode.Tag != "!!str" {
			merges = append(merges, f)
		} else {
			own = append(own, f)
		}
	}
	*budget -= len(own)
	for _, m := range merges {
		if depth >= 8 || *budget < 0 {
			ps.add(path, m.keyNode.Line, "YAML merge keys (<<) nest deeper than 8 or expand to more than %d fields", maxMergedFields)
			return own
		}
		var srcs []*yaml.Node
		switch m.val.Kind {
		case yaml.MappingNode:
			srcs = []*yaml.Node{m.val}
		case yaml.SequenceNode:
			for _, e := range m.val.Content {
				srcs = append(srcs, resolve(e))
			}
		default:
			srcs = []*yaml.Node{m.val}
		}
		for _, src := range srcs {
			if src.Kind != yaml.MappingNode {
				ps.add(path, m.keyNode.Line, "a merge key (<<) takes a mapping or a list of mappings, got %s", kindName(src))
				continue
			}
			for _, f := range mergeInto(src, path, ps, depth+1, budget) {
				if _, dup := lookup(own, f.key); !dup {
					f.merged = true
					own = append(own, f)
				}
			}
		}
	}
	return own
}

// mapping lists a mapping's fields, reporting duplicate and non-string
// keys (Akash's decoder refuses both).
func mapping(n *yaml.Node, path string, ps *problems) []field {
	var out []field
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			ps.add(path, k.Line, "a key is a %s, want a string", kindName(k))
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			ps.add(p, k.Line, "defined twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, field{key: k.Value, keyNode: k, val: v})
	}
	return out
}

func lookup(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// resolve follows an alias (bounded: yaml.v3 refuses alias cycles).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true/false"
		}
		return "a string"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// yamlMsg is a YAML parser error without the "yaml: " prefix. yaml.v3's
// syntax errors name a line and never quote the input.
func yamlMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return "unexpected structure"
	}
	return msg
}

// clip bounds a non-secret value quoted in an error.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

// Private returns the services that have credentials.
func (d *Document) Private() []*Service {
	var out []*Service
	for _, s := range d.Services {
		if s.Credentials != nil {
			out = append(out, s)
		}
	}
	return out
}
