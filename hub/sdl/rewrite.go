package sdl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"

	"github.com/pullgate/pullgate/pkg/imageref"
)

// CheckHubHost validates the hub's address as it goes in front of image
// names: host[:port], or an http(s) URL with nothing after the host (the
// hub's public URL).
func CheckHubHost(h string) (string, error) {
	return imageref.Host(h, imageref.HostLabel("hub host"), imageref.HostPaths("/"),
		imageref.KeepAliases(), imageref.AnyAuthority(), imageref.LowerCaseScheme())
}

// HubImage is the image of a private service pulled through the hub:
// HUB/<upstream-host>/<repository>:<tag> (or @<digest>, or
// :<tag>@<digest> when the SDL names both).
func HubImage(hub string, s *Service) string {
	ref := hub + "/" + s.Repo.Host + "/" + s.Repo.Path
	if strings.Contains(s.Ref, ":") { // a digest; tags have no ':'
		if s.Tag != "" {
			return ref + ":" + s.Tag + "@" + s.Ref
		}
		return ref + "@" + s.Ref
	}
	return ref + ":" + s.Ref
}

// keptImages finds the private services whose image the rewrite leaves as
// it is, with a warning each: an image on a registry with a port cannot be
// named in path-prefix form (the port would go inside a repository path).
// Their credentials go all the same (the hub imported them, and no answer
// of the hub holds a password): the nodes' containerd mirror for that
// registry brings their pulls to the hub.
func (d *Document) keptImages(hub string) (keep map[*Service]bool, warnings []string) {
	keep = map[*Service]bool{}
	for _, s := range d.Private() {
		if _, err := name.ParseReference(HubImage(hub, s), name.StrictValidation); err != nil {
			keep[s] = true
			warnings = append(warnings, fmt.Sprintf("%s.image: %s is on %s, which cannot be named through the hub in path-prefix form "+
				"(a registry port cannot go inside a repository path): image left as it is, credentials removed; "+
				"its pulls reach the hub only through the nodes' containerd mirror for %s",
				servicePath(s), clip(s.Image), s.Repo.Host, s.Repo.Host))
		}
	}
	return keep, warnings
}

// Rewrite returns the document with every private service's image pointed
// at the hub and its credentials removed. Public services and everything
// else are left as they are: for YAML the text is edited in place
// (comments, order, quoting and layout kept) and the result is checked to
// parse to exactly the intended document; when that is not possible (flow
// style, anchors) the document is re-encoded. A private image the hub
// cannot name in path-prefix form is left as it is, with a warning. A
// rewrite that would leave a rewritten service's password anywhere in the
// document (in an anchor it came from) is refused.
func (d *Document) Rewrite(hubHost string) ([]byte, []string, error) {
	hub, err := CheckHubHost(hubHost)
	if err != nil {
		return nil, nil, err
	}
	keep, warnings := d.keptImages(hub)
	var out []byte
	if d.Format == FormatManifest {
		out, err = d.rewriteManifest(hub, keep)
	} else {
		out, err = d.rewriteSDL(hub, keep)
	}
	if err != nil {
		return nil, nil, err
	}
	return out, warnings, nil
}

func (d *Document) rewriteManifest(hub string, keep map[*Service]bool) ([]byte, error) {
	var man []any
	dec := json.NewDecoder(bytes.NewReader(d.src))
	dec.UseNumber()
	if err := dec.Decode(&man); err != nil {
		return nil, fmt.Errorf("rewrite manifest: %w", err)
	}
	for _, s := range d.Private() {
		m, err := manifestService(man, s.manIndex)
		if err != nil {
			return nil, fmt.Errorf("rewrite manifest: service %q: %w", s.Name, err)
		}
		// encoding/json (the hub's parser and the provider's) matches keys
		// case-insensitively: every spelling of "image" and "credentials"
		// goes, or a "Credentials" key would survive the rewrite.
		foldDelete(m, "credentials")
		if !keep[s] {
			foldDelete(m, "image")
			m["image"] = HubImage(hub, s)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(man); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// manifestService finds the service object at idx (group, service) in a
// decoded manifest, refusing what encoding/json would read ambiguously.
func manifestService(man []any, idx [2]int) (map[string]any, error) {
	if idx[0] >= len(man) {
		return nil, errors.New("moved")
	}
	g, _ := man[idx[0]].(map[string]any)
	sv, err := foldGet(g, "services")
	if err != nil {
		return nil, err
	}
	svcs, _ := sv.([]any)
	if idx[1] >= len(svcs) {
		return nil, errors.New("moved")
	}
	m, _ := svcs[idx[1]].(map[string]any)
	if m == nil {
		return nil, errors.New("moved")
	}
	return m, nil
}

// foldGet returns the value of key in m as encoding/json matches it (case
// insensitively). Several spellings are refused: which one a decoder took
// depends on their order, which a map does not keep.
func foldGet(m map[string]any, key string) (any, error) {
	var v any
	n := 0
	for k, x := range m {
		if strings.EqualFold(k, key) {
			v, n = x, n+1
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("several %q keys differing only in case; point the images at the hub by hand", key)
	}
	return v, nil
}

// foldDelete deletes every spelling of key from m.
func foldDelete(m map[string]any, key string) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
}

func (d *Document) rewriteSDL(hub string, keep map[*Service]bool) ([]byte, error) {
	priv := d.Private()
	for _, s := range priv {
		if s.credMerged {
			return nil, fmt.Errorf("%s: its credentials come through a YAML merge key (<<), which the rewrite cannot remove without changing the other services sharing them: write the credentials block in the service, or point the image at the hub by hand", servicePath(s))
		}
	}
	out, err := d.editSDL(hub, priv, keep)
	if err != nil {
		return nil, err
	}
	if err := d.checkNoPasswordLeft(out, priv); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *Document) editSDL(hub string, priv []*Service, keep map[*Service]bool) ([]byte, error) {
	// The intended result as a tree: a fresh parse with the edits applied.
	var want yaml.Node
	if err := yaml.Unmarshal(d.src, &want); err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	if err := applyEdits(&want, priv, keep, hub); err != nil {
		return nil, err
	}
	if text, ok := textEdit(d.src, priv, keep, hub); ok {
		var got yaml.Node
		if yaml.Unmarshal(text, &got) == nil && sameNode(&got, &want) {
			return text, nil
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&want); err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	var got yaml.Node
	if err := yaml.Unmarshal(buf.Bytes(), &got); err != nil || !sameNode(&got, &want) {
		return nil, fmt.Errorf("rewrite: this SDL cannot be rewritten safely (anchors or aliases shared with a credentials block?); point the images at the hub by hand")
	}
	return buf.Bytes(), nil
}

// applyEdits sets the private services' images and drops their
// credentials in a parsed document.
func applyEdits(root *yaml.Node, priv []*Service, keep map[*Service]bool, hub string) error {
	top := root.Content[0]
	var services *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "services" {
			services = resolve(top.Content[i+1])
		}
	}
	for _, s := range priv {
		var svc *yaml.Node
		for i := 0; services != nil && i+1 < len(services.Content); i += 2 {
			if services.Content[i].Value == s.Name {
				svc = resolve(services.Content[i+1])
			}
		}
		if svc == nil {
			return fmt.Errorf("rewrite: service %q not found", s.Name)
		}
		// A new node, never the one an alias shares with other services;
		// an image that came through a merge key gets a key of its own.
		img := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: HubImage(hub, s)}
		own := keep[s]
		for i := 0; i+1 < len(svc.Content); i += 2 {
			switch svc.Content[i].Value {
			case "image":
				if !keep[s] {
					svc.Content[i+1], own = img, true
				}
			case "credentials":
				svc.Content = append(svc.Content[:i:i], svc.Content[i+2:]...)
				i -= 2
			}
		}
		if !own {
			svc.Content = append(svc.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "image"}, img)
		}
	}
	return nil
}

// checkNoPasswordLeft refuses a rewrite whose output still holds the
// password of a rewritten service more often than the input held it
// outside credentials blocks (a tenant may also have written it in env):
// a password in an anchor (an x- extension the credentials alias) stays
// behind when the credentials key goes.
func (d *Document) checkNoPasswordLeft(out []byte, priv []*Service) error {
	creds := map[*yaml.Node]bool{}
	var outRoot yaml.Node
	if err := yaml.Unmarshal(out, &outRoot); err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	markCredentials(d.root, creds)
	for _, s := range priv {
		pw := s.Credentials.Password
		if countIn(&outRoot, pw, nil) > countIn(d.root, pw, creds) {
			return fmt.Errorf("%s: its password would stay in the rewritten SDL (in a YAML anchor its credentials alias?): move the credentials block into the service, or point the image at the hub by hand", servicePath(s))
		}
	}
	return nil
}

// markCredentials collects the mapping nodes that are services'
// credentials blocks (an anchor a credentials key aliases included).
func markCredentials(root *yaml.Node, out map[*yaml.Node]bool) {
	if root == nil || len(root.Content) == 0 {
		return
	}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "services" {
			continue
		}
		svcs := resolve(top.Content[i+1])
		for j := 0; j+1 < len(svcs.Content); j += 2 {
			svc := resolve(svcs.Content[j+1])
			for k := 0; k+1 < len(svc.Content); k += 2 {
				if svc.Content[k].Value == "credentials" {
					markWithMerges(resolve(svc.Content[k+1]), out, 0)
				}
			}
		}
	}
}

// markWithMerges marks a credentials mapping and the mappings it merges
// (<<: *login): those hold its fields too.
func markWithMerges(n *yaml.Node, out map[*yaml.Node]bool, depth int) {
	if out[n] || depth > 8 {
		return
	}
	out[n] = true
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == "<<" && k.Tag != "!!str" {
			v := resolve(n.Content[i+1])
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				markWithMerges(resolve(src), out, depth+1)
			}
		}
	}
}

// countIn counts pw in the scalars of a tree, each node once (aliases are
// not followed), skipping the subtrees in skip.
func countIn(n *yaml.Node, pw string, skip map[*yaml.Node]bool) int {
	if n == nil || skip[n] || n.Kind == yaml.AliasNode {
		return 0
	}
	c := 0
	if n.Kind == yaml.ScalarNode {
		c = strings.Count(n.Value, pw)
	}
	for _, e := range n.Content {
		c += countIn(e, pw, skip)
	}
	return c
}

// textEdit rewrites block-style YAML in place: the image scalar is
// replaced on its line and the credentials key is removed with every more
// deeply indented line after it. It reports false for anything it cannot
// edit that way.
func textEdit(src []byte, priv []*Service, keep map[*Service]bool, hub string) ([]byte, bool) {
	lines := strings.SplitAfter(string(src), "\n")
	drop := make([]bool, len(lines))
	edited := map[int]bool{}
	for _, s := range priv {
		img, key := s.imageNode, s.credKey
		if img == nil || key == nil || img.Kind != yaml.ScalarNode || img.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
			img.Line < 1 || img.Line > len(lines) || key.Line < 1 || key.Line > len(lines) || edited[img.Line] {
			return nil, false
		}
		li, col := img.Line-1, img.Column-1
		runes := []rune(lines[li])
		if col < 0 || col >= len(runes) {
			return nil, false
		}
		end, ok := scalarEnd(runes, col, img)
		if !ok {
			return nil, false
		}
		if !keep[s] {
			tok := HubImage(hub, s)
			switch {
			case img.Style&yaml.DoubleQuotedStyle != 0:
				tok = `"` + tok + `"`
			case img.Style&yaml.SingleQuotedStyle != 0:
				tok = "'" + tok + "'"
			}
			lines[li] = string(runes[:col]) + tok + string(runes[end:])
			edited[img.Line] = true
		}

		// The credentials key must start its line (block style).
		kl, kc := key.Line-1, key.Column-1
		kr := []rune(lines[kl])
		if kc < 0 || kc > len(kr) || strings.TrimSpace(string(kr[:kc])) != "" {
			return nil, false
		}
		last := kl
		for i := kl + 1; i < len(lines); i++ {
			t := lines[i]
			if strings.TrimSpace(t) == "" {
				continue
			}
			if indent(t) <= kc {
				break
			}
			last = i
		}
		if img.Line-1 >= kl && img.Line-1 <= last {
			return nil, false
		}
		for i := kl; i <= last; i++ {
			drop[i] = true
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if !drop[i] {
			b.WriteString(l)
		}
	}
	return []byte(b.String()), true
}

// scalarEnd finds where the scalar starting at col ends on its line.
func scalarEnd(r []rune, col int, n *yaml.Node) (int, bool) {
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if r[col] != '"' {
			return 0, false
		}
		for i := col + 1; i < len(r); i++ {
			switch r[i] {
			case '\\':
				i++
			case '"':
				return i + 1, true
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		if r[col] != '\'' {
			return 0, false
		}
		for i := col + 1; i < len(r); i++ {
			if r[i] == '\'' {
				if i+1 < len(r) && r[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, true
			}
		}
	default:
		v := []rune(n.Value)
		if col+len(v) <= len(r) && string(r[col:col+len(v)]) == n.Value {
			return col + len(v), true
		}
	}
	return 0, false
}

func indent(line string) int {
	return len(line) - len(strings.TrimLeft(line, " "))
}

// sameNode compares two YAML trees by content: kinds, tags, values,
// anchors and order; not comments, styles or positions.
func sameNode(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return false
	}
	switch a.Kind {
	case yaml.ScalarNode:
		if a.ShortTag() != b.ShortTag() || a.Value != b.Value {
			return false
		}
	case yaml.AliasNode:
		if a.Value != b.Value {
			return false
		}
	}
	for i := range a.Content {
		if !sameNode(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}
