package credential

import (
	"context"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/upstream"
)

// tokenSource names where the hub gets registry tokens for c, or "" for
// credentials presented as stored.
func tokenSource(c store.Credential, sec Secret) string {
	switch {
	case c.Kind == KindECR && sec.AWS != nil && sec.AWS.RoleARN != "":
		return "AWS STS AssumeRole, then ECR GetAuthorizationToken"
	case c.Kind == KindECR && sec.AWS != nil:
		return "AWS ECR GetAuthorizationToken"
	case c.Kind == KindACR && sec.Azure != nil:
		return "Microsoft Entra ID, then ACR token exchange"
	}
	return ""
}

// Check is `registry test` for any kind: it obtains the upstream login the
// way the proxy does (a fresh token for kinds that fetch their own, never
// from the cache), then runs the pool's real handshake with the upstream.
// The result names the kind, how it authenticates, when its token expires,
// and carries no secret material.
func (s *Source) Check(ctx context.Context, pool *upstream.Pool, c store.Credential, sec Secret, repo string) upstream.CheckResult {
	now := s.now()
	info := Describe(c, sec, now)
	fill := func(r upstream.CheckResult) upstream.CheckResult {
		r.Kind, r.Auth, r.Warnings = c.Kind, info.Auth, info.Warnings
		r.TokenSource = tokenSource(c, sec)
		if !info.ExpiresAt.IsZero() {
			t := info.ExpiresAt.UTC()
			r.ExpiresAt = &t
		}
		r.Error = Redact(r.Error, sec)
		return r
	}
	var auth authn.Authenticator
	if Dynamic(c, sec) {
		cfg, exp, err := s.fetch(ctx, c, sec)
		if err != nil {
			r := upstream.CheckResult{Error: "obtain token: " + err.Error()}
			if reg, rerr := upstream.Registry(c); rerr == nil {
				r.Upstream = reg.RegistryStr()
			}
			return fill(r)
		}
		auth = authn.FromConfig(cfg)
		r := fill(pool.Check(ctx, c, auth, repo))
		r.TokenObtained = true
		t := exp.UTC().Truncate(time.Second)
		r.ExpiresAt = &t
		return r
	}
	auth, err := s.Authenticator(ctx, c, sec)
	if err != nil {
		r := upstream.CheckResult{Error: err.Error()}
		if reg, rerr := upstream.Registry(c); rerr == nil {
			r.Upstream = reg.RegistryStr()
		}
		return fill(r)
	}
	return fill(pool.Check(ctx, c, auth, repo))
}
