package sdl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/secrets"
	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/pkg/imageref"
)

// Actions in a Report.
const (
	Created   = "created"
	Updated   = "updated"
	Unchanged = "unchanged"
)

// Importer turns a document's credentials into a workspace's registry
// credentials and one install. It is idempotent: importing the same
// document again changes nothing.
type Importer struct {
	Store  WorkspaceState
	Sealer *secrets.Sealer
	Now    func() time.Time // optional
}

// Params name where the import goes.
type Params struct {
	Workspace string
	Cluster   string
	Namespace string
	// Install is the install's name; by default derived from the
	// document's service names (DefaultInstallName).
	Install string
	// DryRun plans and reports without changing anything.
	DryRun bool
	// HubHost, when set, makes the report name each private service's
	// image through the hub.
	HubHost string
	// CredentialScope is what one imported credential covers: ScopeHost
	// (the default: one per host and username) or ScopeRepository (one per
	// repository and username, so that deployments pulling different
	// repositories as the same user with different passwords keep one
	// each: the proxy picks the longest matching prefix).
	CredentialScope string
}

// Credential scopes of an import.
const (
	ScopeHost       = "host"
	ScopeRepository = "repository"
)

// Report says what an import did (or, dry run, would do). It never holds
// a password.
type Report struct {
	Workspace   string             `json:"workspace"`
	Cluster     string             `json:"cluster"`
	Namespace   string             `json:"namespace"`
	Format      string             `json:"format"`            // "sdl" or "manifest"
	Version     string             `json:"version,omitempty"` // SDL version
	DryRun      bool               `json:"dry_run"`
	Services    []ServiceReport    `json:"services"`
	Credentials []CredentialReport `json:"credentials"`
	Install     *InstallReport     `json:"install,omitempty"`
	Warnings    []string           `json:"warnings,omitempty"`

	changedInstall *store.Install
	credsChanged   bool
}

// ServiceReport is one service of the document.
type ServiceReport struct {
	Name       string `json:"name"`
	Group      string `json:"group,omitempty"`
	Image      string `json:"image"`
	Private    bool   `json:"private"`
	Repository string `json:"repository,omitempty"` // host/path, private services only
	Credential string `json:"credential,omitempty"`
	HubImage   string `json:"hub_image,omitempty"`
}

// CredentialReport is one registry credential the import manages.
type CredentialReport struct {
	Name      string     `json:"name"`
	Host      string     `json:"host"`
	Username  string     `json:"username"`
	Kind      string     `json:"kind"`
	Action    string     `json:"action"`
	Version   int        `json:"version"`
	Enabled   bool       `json:"enabled"`
	Services  []string   `json:"services"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
	// SharedWith names the workspace's other installs whose pulls this
	// credential serves: an "updated" password is theirs too.
	SharedWith []string `json:"shared_with,omitempty"`
}

// InstallReport is the install the import manages.
type InstallReport struct {
	Name       string   `json:"name"`
	Action     string   `json:"action"`
	Repos      []string `json:"repos"`
	Enabled    bool     `json:"enabled"`
	Generation int64    `json:"generation"`
}

// ChangedInstall is the install when the import created or changed it
// (so that callers can push revocations).
func (r *Report) ChangedInstall() (store.Install, bool) {
	if r.changedInstall == nil {
		return store.Install{}, false
	}
	return *r.changedInstall, true
}

// CredentialsChanged reports whether the import created or updated a
// credential.
func (r *Report) CredentialsChanged() bool { return r.credsChanged }

// ConflictError is an import that would clash with the workspace's state:
// a credential or install of the same name that is something else, or
// another credential that would serve the document's images.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

func conflict(format string, args ...any) error {
	return &ConflictError{Msg: fmt.Sprintf(format, args...)}
}

type credKey struct{ host, username string }

type credPlan struct {
	key      credKey
	name     string
	prep     credential.Prepared
	services []string
	existing *store.Credential
	action   string
}

// Import plans everything first (parsing, validation, conflicts); only a
// plan without problems is applied, so a refused import changes nothing.
func (im *Importer) Import(ctx context.Context, p Params, doc *Document) (*Report, error) {
	now := time.Now
	if im.Now != nil {
		now = im.Now
	}
	var hub string
	if p.HubHost != "" {
		h, err := CheckHubHost(p.HubHost)
		if err != nil {
			return nil, invalid("hub_host", 0, "%v", err)
		}
		hub = h
	}
	rep := &Report{Workspace: p.Workspace, Cluster: p.Cluster, Namespace: p.Namespace, Format: doc.Format, Version: doc.Version,
		DryRun: p.DryRun, Services: []ServiceReport{}, Credentials: []CredentialReport{}}
	switch p.CredentialScope {
	case "":
		p.CredentialScope = ScopeHost
	case ScopeHost, ScopeRepository:
	default:
		return nil, invalid("credential_scope", 0, "%q: want host or repository", clip(p.CredentialScope))
	}
	ws, err := im.Store.GetWorkspace(ctx, p.Workspace)
	if err != nil {
		return nil, err
	}

	// Credentials: one per host and username.
	var ps problems
	var plans []*credPlan
	byKey := map[credKey]*credPlan{}
	passwords := map[credKey]string{}
	for _, s := range doc.Private() {
		c := s.Credentials
		k := keyOf(s, p.CredentialScope)
		path := servicePath(s) + ".credentials"
		if pw, seen := passwords[k]; seen {
			if pw != c.Password {
				ps.add(path+".password", c.line, "differs from the password another service gives for %s user %s", k.host, k.username)
			}
			byKey[k].services = append(byKey[k].services, s.Name)
			continue
		}
		passwords[k] = c.Password
		prep, err := credential.Prepare(credential.Input{Host: k.host, Username: c.Username, Password: c.Password}, now())
		if err != nil {
			var ie *credential.InputError
			if !errors.As(err, &ie) {
				return nil, err
			}
			ps.add(path, c.line, "%s", credential.Redact(ie.Msg, credential.Secret{Password: c.Password}))
			continue
		}
		cp := &credPlan{key: k, name: CredentialName(k.host, c.Username), prep: prep, services: []string{s.Name}}
		byKey[k] = cp
		plans = append(plans, cp)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}

	existing, err := im.Store.ListCredentials(ctx, p.Workspace)
	if err != nil {
		return nil, err
	}
	after := slices.Clone(existing)
	for _, cp := range plans {
		i := slices.IndexFunc(existing, func(c store.Credential) bool { return c.Name == cp.name })
		if i < 0 {
			cp.action = Created
			after = append(after, store.Credential{Name: cp.name, Host: cp.key.host, Kind: cp.prep.Kind, Username: cp.prep.Username, Enabled: true})
			continue
		}
		ex := existing[i]
		cp.existing = &ex
		if ex.Host != cp.key.host || ex.Username != cp.prep.Username || ex.Kind != cp.prep.Kind {
			return nil, conflict("registry credential %q already exists for %s (username %s, kind %s), not %s (username %s, kind %s): delete or rename it",
				cp.name, ex.Host, ex.Username, ex.Kind, cp.key.host, cp.prep.Username, cp.prep.Kind)
		}
		sealed, err := im.Store.CredentialSecret(ctx, ex.ID, ex.Version)
		if err != nil {
			return nil, err
		}
		cur, err := credential.Open(im.Sealer, ex, sealed)
		if err != nil {
			return nil, err
		}
		if cur.Password == cp.prep.Secret.Password && cur.AWS == nil && cur.Azure == nil {
			cp.action = Unchanged
			cp.prep.Secret = cur // keeps a pasted token's recorded expiry
		} else {
			cp.action = Updated
		}
	}

	// Every private image must be served by its SDL credential and no
	// other: the proxy picks the longest matching prefix.
	for _, s := range doc.Private() {
		cp := byKey[keyOf(s, p.CredentialScope)]
		cands := credential.Candidates(after, s.Repo)
		names := make([]string, 0, len(cands))
		for _, c := range cands {
			names = append(names, fmt.Sprintf("%q (%s)", c.Name, c.Host))
		}
		switch {
		case !slices.ContainsFunc(cands, func(c store.Credential) bool { return c.Name == cp.name }):
			return nil, conflict("%s: image %s would be pulled with registry credential %s, which is more specific than the SDL's credentials; remove it or import into another workspace",
				servicePath(s), s.Repo, strings.Join(names, ", "))
		case len(cands) > 1:
			return nil, conflict("%s: image %s is covered equally by registry credentials %s: the hub could not tell which to use; remove the others or import into another workspace",
				servicePath(s), s.Repo, strings.Join(names, ", "))
		}
	}

	// The install: exactly the private repositories.
	var repos []string
	for _, s := range doc.Private() {
		pat, err := imageref.ParsePattern(s.Repo.String())
		if err != nil {
			return nil, invalid(servicePath(s)+".image", s.imageLine(0), "%v", err)
		}
		if !slices.Contains(repos, pat.String()) {
			repos = append(repos, pat.String())
		}
	}
	slices.Sort(repos)
	instName := p.Install
	if instName == "" {
		instName = DefaultInstallName(doc)
	}
	var inst *store.Install
	instAction := ""
	if len(repos) > 0 {
		if !store.ValidName(instName) {
			return nil, invalid("install", 0, "%q: must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", clip(instName))
		}
		in, err := im.Store.GetInstall(ctx, p.Workspace, instName)
		switch {
		case errors.Is(err, store.ErrNotFound):
			instAction = Created
		case err != nil:
			return nil, err
		default:
			if in.Cluster != p.Cluster || in.Namespace != p.Namespace {
				return nil, conflict("install %q already exists for cluster %q, namespace %q; this import is for cluster %q, namespace %q: give another install name",
					in.Name, in.Cluster, in.Namespace, p.Cluster, p.Namespace)
			}
			cur := slices.Clone(in.Repos)
			slices.Sort(cur)
			instAction = Updated
			if slices.Equal(cur, repos) {
				instAction = Unchanged
			}
			inst = &in
		}
	} else {
		rep.Warnings = append(rep.Warnings, "no service has credentials: nothing to import (public images need no hub state)")
	}

	// Who else pulls through each credential: a password this import
	// changes is theirs too.
	installs, err := im.Store.ListInstalls(ctx, p.Workspace)
	if err != nil {
		return nil, err
	}
	shared := map[string][]string{}
	for _, cp := range plans {
		if cp.existing != nil {
			shared[cp.name] = sharingInstalls(after, *cp.existing, installs, instName)
		}
	}

	// Apply.
	for _, cp := range plans {
		c := store.Credential{WorkspaceID: ws.ID, Name: cp.name, Host: cp.key.host, Kind: cp.prep.Kind, Username: cp.prep.Username, Enabled: true}
		if cp.existing != nil {
			c = *cp.existing
		}
		if !p.DryRun && cp.action != Unchanged {
			sealed, err := credential.Seal(im.Sealer, c, cp.prep.Secret)
			if err != nil {
				return nil, err
			}
			if cp.action == Created {
				c, err = im.Store.CreateCredential(ctx, p.Workspace, c, sealed)
			} else {
				c, err = im.Store.UpdateCredential(ctx, p.Workspace, cp.name, store.CredentialUpdate{Secret: sealed})
			}
			if err != nil {
				return nil, fmt.Errorf("registry credential %q: %w", cp.name, err)
			}
			rep.credsChanged = true
		} else if cp.action == Created {
			c.Version = 1
		} else if cp.action == Updated {
			c.Version++
		}
		cr := CredentialReport{Name: cp.name, Host: c.Host, Username: c.Username, Kind: c.Kind, Action: cp.action, Version: c.Version,
			Enabled: c.Enabled, Services: cp.services}
		info := credential.Describe(c, cp.prep.Secret, now())
		cr.Warnings = info.Warnings
		if !info.ExpiresAt.IsZero() {
			t := info.ExpiresAt.UTC()
			cr.ExpiresAt = &t
		}
		if !c.Enabled {
			cr.Warnings = append(cr.Warnings, "this credential is disabled: pulls of its images are refused until it is enabled")
		}
		cr.SharedWith = shared[cp.name]
		if cp.action == Updated && len(cr.SharedWith) > 0 {
			verb := "replaced"
			if p.DryRun {
				verb = "would replace"
			}
			cr.Warnings = append(cr.Warnings, fmt.Sprintf("this import %s the password of %s user %s for installs %s too, which pull through the same credential: "+
				"to keep deployments apart, import with credential scope repository (--credential-scope repository: one credential per repository) or into another workspace",
				verb, c.Host, c.Username, strings.Join(cr.SharedWith, ", ")))
		}
		rep.Credentials = append(rep.Credentials, cr)
	}
	if instAction != "" {
		ir := &InstallReport{Name: instName, Action: instAction, Repos: repos, Enabled: true, Generation: 1}
		if inst != nil {
			ir.Enabled, ir.Generation = inst.Enabled, inst.Generation
		}
		if !p.DryRun && instAction != Unchanged {
			var in store.Install
			var err error
			if instAction == Created {
				in, err = im.Store.CreateInstall(ctx, p.Workspace, store.Install{Name: instName, Cluster: p.Cluster, Namespace: p.Namespace,
					Repos: repos, Enabled: true})
			} else {
				in, err = im.Store.UpdateInstall(ctx, p.Workspace, instName, store.InstallUpdate{Repos: &repos})
			}
			if err != nil {
				return nil, fmt.Errorf("install %q: %w", instName, err)
			}
			ir.Enabled, ir.Generation = in.Enabled, in.Generation
			rep.changedInstall = &in
		} else if p.DryRun && instAction == Updated {
			ir.Generation++
		}
		if !ir.Enabled {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("install %q is disabled: enable it before pods can pull", instName))
		}
		rep.Install = ir
	}
	for _, s := range doc.Services {
		sr := ServiceReport{Name: s.Name, Group: s.Group, Image: s.Image, Private: s.Credentials != nil}
		if sr.Private {
			sr.Repository = s.Repo.String()
			sr.Credential = byKey[keyOf(s, p.CredentialScope)].name
			if img := HubImage(hub, s); hub != "" && validRef(img) {
				sr.HubImage = img
			}
		}
		rep.Services = append(rep.Services, sr)
	}
	return rep, nil
}

// keyOf is the credential a private service's image is imported under.
func keyOf(s *Service, scope string) credKey {
	if scope == ScopeRepository {
		return credKey{s.Repo.String(), s.Credentials.Username}
	}
	return credKey{s.Credentials.Host, s.Credentials.Username}
}

// sharingInstalls names the installs, other than this import's, that pull
// through cred: an allow-list entry that cred would serve (the longest
// matching prefix among creds, for an exact repository; a prefix match for
// a wildcard pattern), or no allow-list at all.
func sharingInstalls(creds []store.Credential, cred store.Credential, installs []store.Install, self string) []string {
	var out []string
	for _, in := range installs {
		if in.Name == self {
			continue
		}
		uses := len(in.Repos) == 0
		for _, pat := range in.Repos {
			if uses {
				break
			}
			if !strings.Contains(pat, "*") {
				if i := strings.IndexByte(pat, '/'); i > 0 {
					if repo, err := imageref.ParseRepo(pat[:i], pat[i+1:]); err == nil {
						uses = slices.ContainsFunc(credential.Candidates(creds, repo), func(c store.Credential) bool { return c.Name == cred.Name })
					}
				}
				continue
			}
			uses = strings.HasPrefix(pat, cred.Host+"/")
		}
		if uses {
			out = append(out, in.Name)
		}
	}
	return out
}

func servicePath(s *Service) string {
	if s.Group != "" {
		return fmt.Sprintf("group %q service %q", clip(s.Group), clip(s.Name))
	}
	return "services." + s.Name
}

// CredentialName is the registry credential an import keeps for one host
// and username: readable, deterministic and within the naming rules
// ("sdl-docker.io-myuser-3fa2c1").
func CredentialName(host, username string) string {
	sum := sha256.Sum256([]byte(host + "\x00" + username))
	h, u := slug(host, 40), slug(username, 51-min(len(slug(host, 40)), 40))
	if u == "" {
		u = "user"
	}
	return "sdl-" + h + "-" + u + "-" + hex.EncodeToString(sum[:3])
}

// DefaultInstallName names the install of a document after its services
// ("sdl-api-web"), with a hash when the names do not fit.
func DefaultInstallName(doc *Document) string {
	var names []string
	for _, s := range doc.Services {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	slices.Sort(names)
	full := strings.Join(names, "-")
	name := "sdl-" + slug(full, 60)
	if len(slug(full, 1000)) > 60 || slug(full, 1000) != full {
		sum := sha256.Sum256([]byte(full))
		name = "sdl-" + slug(full, 51) + "-" + hex.EncodeToString(sum[:4])
		name = strings.Replace(name, "--", "-", -1)
	}
	return strings.TrimRight(name, "-.")
}

// slug keeps lowercase letters, digits, '.' and '-' (anything else becomes
// '-'), collapses runs of '-', and trims to n bytes without a trailing '-'
// or '.'.
func slug(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
		default:
			if !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	out := b.String()
	if len(out) > n {
		out = out[:n]
	}
	return strings.Trim(out, "-.")
}

func validRef(s string) bool {
	_, err := name.ParseReference(s, name.StrictValidation)
	return err == nil
}
