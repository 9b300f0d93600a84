package credential

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pullgate/pullgate/internal/jwtexp"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
	"github.com/pullgate/pullgate/hub/upstream"
)

// maxTokenBody bounds identity-provider and exchange responses.
const maxTokenBody = 256 << 10

// acrRefreshTokenLife is assumed when an ACR refresh token's expiry cannot
// be read (ACR issues them for three hours).
const acrRefreshTokenLife = time.Hour

// azureCloud is the Entra ID authority and the ARM audience of the cloud an
// ACR host belongs to.
func azureCloud(host string) (authority, scope string) {
	switch {
	case strings.HasSuffix(host, ".azurecr.cn"):
		return "https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"
	case strings.HasSuffix(host, ".azurecr.us"):
		return "https://login.microsoftonline.us", "https://management.usgovcloudapi.net/.default"
	}
	return "https://login.microsoftonline.com", "https://management.azure.com/.default"
}

// fetchACR gets an ACR refresh token for a service principal: a Microsoft
// Entra ID access token (client credentials grant), exchanged at the
// registry's /oauth2/exchange. The registry's own token endpoint turns the
// refresh token into repository-scoped access tokens (the upstream pool
// does that, per repository, as for any Bearer registry).
func (s *Source) fetchACR(ctx context.Context, c store.Credential, sec Secret) (authn.AuthConfig, time.Time, error) {
	sp := sec.Azure
	host := hostOf(c.Host)
	authority, scope := azureCloud(host)
	if s.azureAuthority != "" {
		authority = s.azureAuthority
	}
	var aadTok struct {
		AccessToken string `json:"access_token"`
	}
	err := s.postForm(ctx, c, "Entra ID token", authority+"/"+url.PathEscape(sp.TenantID)+"/oauth2/v2.0/token", url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {sp.ClientID},
		"client_secret": {sp.ClientSecret},
		"scope":         {scope},
	}, &aadTok)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	if aadTok.AccessToken == "" {
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "Entra ID returned no access token", Temporary: true}
	}
	// The exchange goes to the registry itself (its endpoint when it has
	// one), never to a host from a response.
	reg, err := upstream.Registry(c)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: err.Error()}
	}
	var exch struct {
		RefreshToken string `json:"refresh_token"`
	}
	hc := s.hcPublic
	if c.AllowPrivateNetwork {
		hc = s.hc
	}
	err = s.postFormWith(ctx, hc, c, "ACR token exchange", upstream.Scheme(c)+"://"+reg.RegistryStr()+"/oauth2/exchange", url.Values{
		"grant_type":   {"access_token"},
		"service":      {host},
		"tenant":       {sp.TenantID},
		"access_token": {aadTok.AccessToken},
	}, &exch)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	if exch.RefreshToken == "" {
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "ACR token exchange returned no refresh token", Temporary: true}
	}
	exp := jwtexp.Unverified(exch.RefreshToken)
	if exp.IsZero() || !exp.After(s.now()) {
		exp = s.now().Add(acrRefreshTokenLife)
	}
	return authn.AuthConfig{Username: acrExchangeUser, IdentityToken: exch.RefreshToken}, exp, nil
}

// postForm posts an OAuth2-style form and decodes the JSON answer. Error
// answers are reported by their OAuth2 error code and description.
func (s *Source) postForm(ctx context.Context, c store.Credential, what, u string, form url.Values, out any) error {
	return s.postFormWith(ctx, s.hc, c, what, u, form, out)
}

// postFormWith is postForm with a given client: the ACR exchange goes to
// the registry itself, through a client that refuses special-purpose
// addresses unless the credential allows a private network.
func (s *Source) postFormWith(ctx context.Context, hc *http.Client, c store.Credential, what, u string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Credential: c.Name, Msg: what + ": " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pullgate")
	resp, err := hc.Do(req)
	if err != nil {
		return &Error{Credential: c.Name, Msg: what + " failed: " + clipMsg(shortURLErr(err)), Temporary: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return &Error{Credential: c.Name, Msg: what + ": read answer: " + err.Error(), Temporary: true}
	}
	if resp.StatusCode != http.StatusOK {
		var oe struct {
			Error            any    `json:"error"`
			ErrorDescription string `json:"error_description"`
			Errors           []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		detail := ""
		if json.Unmarshal(body, &oe) == nil {
			switch {
			case oe.ErrorDescription != "":
				detail = fmt.Sprintf("%v: %s", oe.Error, firstLine(oe.ErrorDescription))
			case len(oe.Errors) > 0:
				detail = oe.Errors[0].Code + ": " + oe.Errors[0].Message
			case oe.Error != nil:
				detail = fmt.Sprint(oe.Error)
			}
		}
		if detail == "" {
			detail = http.StatusText(resp.StatusCode)
		}
		return &Error{Credential: c.Name, Msg: fmt.Sprintf("%s refused (%d): %s", what, resp.StatusCode, clipMsg(detail)),
			Temporary: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Credential: c.Name, Msg: what + ": answer is not the expected JSON", Temporary: true}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// shortURLErr drops the URL from a *url.Error (it may carry a query).
func shortURLErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
