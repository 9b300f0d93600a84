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
	// Akash, instead of a cluster and namespace, makes the install an
	// Akash install of that scope ("all" or a dseq): served in the
	// workspace's lease namespaces (the provider's credential import).
	Akash string
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
	r, err := im.begin(ctx, p, doc)
	if err != nil {
		return nil, err
	}
	if err := r.planCredentials(); err != nil {
		return nil, err
	}
	if err := r.compareExisting(ctx); err != nil {
		return nil, err
	}
	if err := r.checkRouting(); err != nil {
		return nil, err
	}
	if err := r.planInstall(ctx); err != nil {
		return nil, err
	}
	shared, err := r.sharing(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.applyCredentials(ctx, shared); err != nil {
		return nil, err
	}
	if err := r.applyInstall(ctx); err != nil {
		return nil, err
	}
	r.reportServices()
	return r.rep, nil
}

// importRun is one import's state, step by step: the plan, then what
// applying it did.
type importRun struct {
	im  *Importer
	p   Params
	doc *Document
	now func() time.Time
	hub string // the hub host for HubImage, "" when not given
	ws  store.Workspace
	rep *Report

	plans  []*credPlan
	byKey  map[credKey]*credPlan
	after  []store.Credential // the workspace's credentials once applied
	repos  []string           // the install's allow-list: the private repositories
	inst   *store.Install     // the existing install, nil when created
	instNm string
	instAc string // Created, Updated, Unchanged, or "" when nothing is private
}

// begin checks the parameters and reads the workspace.
func (im *Importer) begin(ctx context.Context, p Params, doc *Document) (*importRun, error) {
	r := &importRun{im: im, p: p, doc: doc, now: time.Now, byKey: map[credKey]*credPlan{}}
	if im.Now != nil {
		r.now = im.Now
	}
	if p.HubHost != "" {
		h, err := CheckHubHost(p.HubHost)
		if err != nil {
			return nil, invalid("hub_host", 0, "%v", err)
		}
		r.hub = h
	}
	switch r.p.CredentialScope {
	case "":
		r.p.CredentialScope = ScopeHost
	case ScopeHost, ScopeRepository:
	default:
		return nil, invalid("credential_scope", 0, "%q: want host or repository", clip(p.CredentialScope))
	}
	r.rep = &Report{Workspace: p.Workspace, Cluster: p.Cluster, Namespace: p.Namespace, Format: doc.Format, Version: doc.Version,
		DryRun: p.DryRun, Services: []ServiceReport{}, Credentials: []CredentialReport{}}
	ws, err := im.Store.GetWorkspace(ctx, p.Workspace)
	if err != nil {
		return nil, err
	}
	r.ws = ws
	return r, nil
}

// planCredentials makes one credential per host and username (or
// repository and username), refusing services that disagree on its
// password.
func (r *importRun) planCredentials() error {
	var ps problems
	passwords := map[credKey]string{}
	for _, s := range r.doc.Private() {
		c := s.Credentials
		k := keyOf(s, r.p.CredentialScope)
		path := servicePath(s) + ".credentials"
		if pw, seen := passwords[k]; seen {
			if pw != c.Password {
				ps.add(path+".password", c.line, "differs from the password another service gives for %s user %s", k.host, k.username)
			}
			r.byKey[k].services = append(r.byKey[k].services, s.Name)
			continue
		}
		passwords[k] = c.Password
		prep, err := credential.Prepare(credential.Input{Host: k.host, Username: c.Username, Password: c.Password}, r.now())
		if err != nil {
			var ie *credential.InputError
			if !errors.As(err, &ie) {
				return err
			}
			ps.add(path, c.line, "%s", credential.Redact(ie.Msg, credential.Secret{Password: c.Password}))
			continue
		}
		cp := &credPlan{key: k, name: CredentialName(k.host, c.Username), prep: prep, services: []string{s.Name}}
		r.byKey[k] = cp
		r.plans = append(r.plans, cp)
	}
	return ps.err()
}

// compareExisting decides, per planned credential, whether it is created,
// updated or unchanged, and what the workspace's credentials will be.
func (r *importRun) compareExisting(ctx context.Context) error {
	existing, err := r.im.Store.ListCredentials(ctx, r.p.Workspace)
	if err != nil {
		return err
	}
	r.after = slices.Clone(existing)
	for _, cp := range r.plans {
		i := slices.IndexFunc(existing, func(c store.Credential) bool { return c.Name == cp.name })
		if i < 0 {
			cp.action = Created
			r.after = append(r.after, store.Credential{Name: cp.name, Host: cp.key.host, Kind: cp.prep.Kind, Username: cp.prep.Username, Enabled: true})
			continue
		}
		ex := existing[i]
		cp.existing = &ex
		if ex.Host != cp.key.host || ex.Username != cp.prep.Username || ex.Kind != cp.prep.Kind {
			return conflict("registry credential %q already exists for %s (username %s, kind %s), not %s (username %s, kind %s): delete or rename it",
				cp.name, ex.Host, ex.Username, ex.Kind, cp.key.host, cp.prep.Username, cp.prep.Kind)
		}
		sealed, err := r.im.Store.CredentialSecret(ctx, ex.ID, ex.Version)
		if err != nil {
			return err
		}
		cur, err := credential.Open(r.im.Sealer, ex, sealed)
		if err != nil {
			return err
		}
		if cur.Password == cp.prep.Secret.Password && cur.AWS == nil && cur.Azure == nil {
			cp.action = Unchanged
			cp.prep.Secret = cur // keeps a pasted token's recorded expiry
		} else {
			cp.action = Updated
		}
	}
	return nil
}

// checkRouting: every private image must be served by its SDL credential
// and no other (the proxy picks the longest matching prefix).
func (r *importRun) checkRouting() error {
	for _, s := range r.doc.Private() {
		cp := r.byKey[keyOf(s, r.p.CredentialScope)]
		cands := credential.Candidates(r.after, s.Repo)
		names := make([]string, 0, len(cands))
		for _, c := range cands {
			names = append(names, fmt.Sprintf("%q (%s)", c.Name, c.Host))
		}
		switch {
		case !slices.ContainsFunc(cands, func(c store.Credential) bool { return c.Name == cp.name }):
			return conflict("%s: image %s would be pulled with registry credential %s, which is more specific than the SDL's credentials; remove it or import into another workspace",
				servicePath(s), s.Repo, strings.Join(names, ", "))
		case len(cands) > 1:
			return conflict("%s: image %s is covered equally by registry credentials %s: the hub could not tell which to use; remove the others or import into another workspace",
				servicePath(s), s.Repo, strings.Join(names, ", "))
		}
	}
	return nil
}

// planInstall plans the install: exactly the private repositories.
func (r *importRun) planInstall(ctx context.Context) error {
	for _, s := range r.doc.Private() {
		pat, err := imageref.ParsePattern(s.Repo.String())
		if err != nil {
			return invalid(servicePath(s)+".image", s.imageLine(0), "%v", err)
		}
		if !slices.Contains(r.repos, pat.String()) {
			r.repos = append(r.repos, pat.String())
		}
	}
	slices.Sort(r.repos)
	r.instNm = r.p.Install
	if r.instNm == "" {
		r.instNm = DefaultInstallName(r.doc)
	}
	if len(r.repos) == 0 {
		r.rep.Warnings = append(r.rep.Warnings, "no service has credentials: nothing to import (public images need no hub state)")
		return nil
	}
	if !store.ValidName(r.instNm) {
		return invalid("install", 0, "%q: must be 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", clip(r.instNm))
	}
	in, err := r.im.Store.GetInstall(ctx, r.p.Workspace, r.instNm)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.instAc = Created
	case err != nil:
		return err
	default:
		if in.Akash != r.p.Akash {
			return conflict("install %q already exists with Akash scope %q; this import is for %q: give another install name",
				in.Name, in.Akash, r.p.Akash)
		}
		if in.Cluster != r.p.Cluster || in.Namespace != r.p.Namespace {
			return conflict("install %q already exists for cluster %q, namespace %q; this import is for cluster %q, namespace %q: give another install name",
				in.Name, in.Cluster, in.Namespace, r.p.Cluster, r.p.Namespace)
		}
		cur := slices.Clone(in.Repos)
		slices.Sort(cur)
		r.instAc = Updated
		if slices.Equal(cur, r.repos) {
			r.instAc = Unchanged
		}
		r.inst = &in
	}
	return nil
}

// sharing says who else pulls through each existing credential: a
// password this import changes is theirs too.
func (r *importRun) sharing(ctx context.Context) (map[string][]string, error) {
	installs, err := r.im.Store.ListInstalls(ctx, r.p.Workspace)
	if err != nil {
		return nil, err
	}
	shared := map[string][]string{}
	for _, cp := range r.plans {
		if cp.existing != nil {
			shared[cp.name] = sharingInstalls(r.after, *cp.existing, installs, r.instNm)
		}
	}
	return shared, nil
}

// applyCredentials writes the planned credentials (unless a dry run) and
// reports each.
func (r *importRun) applyCredentials(ctx context.Context, shared map[string][]string) error {
	for _, cp := range r.plans {
		c := store.Credential{WorkspaceID: r.ws.ID, Name: cp.name, Host: cp.key.host, Kind: cp.prep.Kind, Username: cp.prep.Username, Enabled: true}
		if cp.existing != nil {
			c = *cp.existing
		}
		if !r.p.DryRun && cp.action != Unchanged {
			sealed, err := credential.Seal(r.im.Sealer, c, cp.prep.Secret)
			if err != nil {
				return err
			}
			if cp.action == Created {
				c, err = r.im.Store.CreateCredential(ctx, r.p.Workspace, c, sealed)
			} else {
				c, err = r.im.Store.UpdateCredential(ctx, r.p.Workspace, cp.name, store.CredentialUpdate{Secret: sealed})
			}
			if err != nil {
				return fmt.Errorf("registry credential %q: %w", cp.name, err)
			}
			r.rep.credsChanged = true
		} else if cp.action == Created {
			c.Version = 1
		} else if cp.action == Updated {
			c.Version++
		}
		r.rep.Credentials = append(r.rep.Credentials, r.credentialReport(cp, c, shared[cp.name]))
	}
	return nil
}

// credentialReport is the report of one credential as it is after the
// import (or would be, in a dry run).
func (r *importRun) credentialReport(cp *credPlan, c store.Credential, sharedWith []string) CredentialReport {
	cr := CredentialReport{Name: cp.name, Host: c.Host, Username: c.Username, Kind: c.Kind, Action: cp.action, Version: c.Version,
		Enabled: c.Enabled, Services: cp.services}
	info := credential.Describe(c, cp.prep.Secret, r.now())
	cr.Warnings = info.Warnings
	if !info.ExpiresAt.IsZero() {
		t := info.ExpiresAt.UTC()
		cr.ExpiresAt = &t
	}
	if !c.Enabled {
		cr.Warnings = append(cr.Warnings, "this credential is disabled: pulls of its images are refused until it is enabled")
	}
	cr.SharedWith = sharedWith
	if cp.action == Updated && len(cr.SharedWith) > 0 {
		verb := "replaced"
		if r.p.DryRun {
			verb = "would replace"
		}
		cr.Warnings = append(cr.Warnings, fmt.Sprintf("this import %s the password of %s user %s for installs %s too, which pull through the same credential: "+
			"to keep deployments apart, import with credential scope repository (--credential-scope repository: one credential per repository) or into another workspace",
			verb, c.Host, c.Username, strings.Join(cr.SharedWith, ", ")))
	}
	return cr
}

// applyInstall writes the planned install (unless a dry run) and reports it.
func (r *importRun) applyInstall(ctx context.Context) error {
	if r.instAc == "" {
		return nil
	}
	ir := &InstallReport{Name: r.instNm, Action: r.instAc, Repos: r.repos, Enabled: true, Generation: 1}
	if r.inst != nil {
		ir.Enabled, ir.Generation = r.inst.Enabled, r.inst.Generation
	}
	if !r.p.DryRun && r.instAc != Unchanged {
		var in store.Install
		var err error
		if r.instAc == Created {
			in, err = r.im.Store.CreateInstall(ctx, r.p.Workspace, store.Install{Name: r.instNm, Cluster: r.p.Cluster, Namespace: r.p.Namespace,
				Akash: r.p.Akash, Repos: r.repos, Enabled: true})
		} else {
			in, err = r.im.Store.UpdateInstall(ctx, r.p.Workspace, r.instNm, store.InstallUpdate{Repos: &r.repos})
		}
		if err != nil {
			return fmt.Errorf("install %q: %w", r.instNm, err)
		}
		ir.Enabled, ir.Generation = in.Enabled, in.Generation
		r.rep.changedInstall = &in
	} else if r.p.DryRun && r.instAc == Updated {
		ir.Generation++
	}
	if !ir.Enabled {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("install %q is disabled: enable it before pods can pull", r.instNm))
	}
	r.rep.Install = ir
	return nil
}

// reportServices lists every service, with its hub image when private.
func (r *importRun) reportServices() {
	for _, s := range r.doc.Services {
		sr := ServiceReport{Name: s.Name, Group: s.Group, Image: s.Image, Private: s.Credentials != nil}
		if sr.Private {
			sr.Repository = s.Repo.String()
			sr.Credential = r.byKey[keyOf(s, r.p.CredentialScope)].name
			if img := HubImage(r.hub, s); r.hub != "" && validRef(img) {
				sr.HubImage = img
			}
		}
		r.rep.Services = append(r.rep.Services, sr)
	}
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
