package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pullgate/pullgate/hub/api"
)

// kindFlags are the non-secret parameters of the ecr and acr kinds. The
// secret (AWS secret access key, Azure client secret, pasted token) is
// always read from stdin with --password-stdin.
type kindFlags struct {
	awsKeyID, awsRole, awsExternalID, awsRegion, tokenExpires string
	azureTenant, azureClient                                  string
}

const kindsHelp = `Kinds (--kind; by default inferred from the host: ECR hosts are ecr,
*.azurecr.io acr, gcr.io, *.gcr.io and *-docker.pkg.dev gcp, others basic):
  basic   username and password (Docker Hub, GitLab, Quay robot, any registry)
  token   an access token (GitHub PAT, Docker Hub access token); username optional
  ecr     Amazon ECR. With --aws-access-key-id, stdin is the secret access key
          and the hub fetches 12-hour registry tokens itself, renewing them
          before they expire (--aws-role-arn to assume a role first). Without
          it, stdin is a pasted token (aws ecr get-login-password) that
          expires after 12 hours (--token-expires-at to say when).
  acr     Azure Container Registry. With --azure-tenant-id and
          --azure-client-id, stdin is the service principal's client secret
          and the hub exchanges Entra ID tokens for ACR tokens itself.
          Without, --username and its password (admin user, repository token).
  gcp     Google Container/Artifact Registry: stdin is the service-account
          JSON key file (--username _json_key, the default), the key file in
          base64 (--username _json_key_base64) or an OAuth2 access token
          (--username oauth2accesstoken). A key file is checked before it is
          stored; errors name the missing or bad field.`

func addKindFlags(f *pflag.FlagSet, k *kindFlags) {
	f.StringVar(&k.awsKeyID, "aws-access-key-id", "", "ecr: AWS access key id (stdin is then the secret access key)")
	f.StringVar(&k.awsRole, "aws-role-arn", "", "ecr: IAM role to assume with the keys")
	f.StringVar(&k.awsExternalID, "aws-external-id", "", "ecr: external id for the role")
	f.StringVar(&k.awsRegion, "aws-region", "", "ecr: AWS region (default: from the host)")
	f.StringVar(&k.tokenExpires, "token-expires-at", "", "ecr: expiry of a pasted token, RFC 3339 (default: read from the token, else 12h)")
	f.StringVar(&k.azureTenant, "azure-tenant-id", "", "acr: service principal's tenant id")
	f.StringVar(&k.azureClient, "azure-client-id", "", "acr: service principal's application (client) id (stdin is then the client secret)")
}

// params returns the ecr and acr parameters given on the command line (nil
// when none of a kind's flags were given).
func (k *kindFlags) params(cmd *cobra.Command) (*api.ECRParams, *api.ACRParams, error) {
	f := cmd.Flags()
	var e *api.ECRParams
	if f.Changed("aws-access-key-id") || f.Changed("aws-role-arn") || f.Changed("aws-external-id") || f.Changed("aws-region") || f.Changed("token-expires-at") {
		e = &api.ECRParams{AccessKeyID: k.awsKeyID, RoleARN: k.awsRole, ExternalID: k.awsExternalID, Region: k.awsRegion}
		if k.tokenExpires != "" {
			t, err := time.Parse(time.RFC3339, k.tokenExpires)
			if err != nil {
				return nil, nil, usageErrorf("--token-expires-at %q: want an RFC 3339 time (2006-01-02T15:04:05Z)", k.tokenExpires)
			}
			e.TokenExpiresAt = &t
		}
	}
	var a *api.ACRParams
	if f.Changed("azure-tenant-id") || f.Changed("azure-client-id") {
		a = &api.ACRParams{TenantID: k.azureTenant, ClientID: k.azureClient}
	}
	return e, a, nil
}

// warn prints a registry's warnings (pasted-token expiry...) to stderr in
// table mode.
func warn(s *session, r api.Registry) {
	if s.json {
		return
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(s.err, "warning: registry %q: %s\n", r.Name, w)
	}
}

func fmtExpiry(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}
