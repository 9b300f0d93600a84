package credential

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/pullgate/pullgate/hub/store"
)

// roleSessionName names the hub's AssumeRole sessions in CloudTrail.
const roleSessionName = "pullgate-hub"

// fetchECR calls ECR GetAuthorizationToken with the credential's AWS keys
// (through STS AssumeRole when it names a role). The token's proxyEndpoint
// is ignored: the hub talks only to the credential's configured host.
func (s *Source) fetchECR(ctx context.Context, c store.Credential, sec Secret) (authn.AuthConfig, time.Time, error) {
	keys := sec.AWS
	region := keys.Region
	_, hostRegion, ok := ECRHost(hostOf(c.Host))
	if region == "" {
		if !ok {
			return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "no AWS region: the host is not an ECR host and no region is stored"}
		}
		region = hostRegion
	}
	fips := strings.Contains(hostOf(c.Host), "-fips.")
	var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider(keys.AccessKeyID, keys.SecretAccessKey, "")
	if keys.RoleARN != "" {
		stsOpts := sts.Options{Region: region, Credentials: creds, HTTPClient: s.hc, RetryMaxAttempts: 2}
		if s.stsEndpoint != "" {
			stsOpts.BaseEndpoint = aws.String(s.stsEndpoint)
		}
		prov := stscreds.NewAssumeRoleProvider(sts.New(stsOpts), keys.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = roleSessionName
			o.Duration = 15 * time.Minute
			if keys.ExternalID != "" {
				o.ExternalID = aws.String(keys.ExternalID)
			}
		})
		creds = aws.NewCredentialsCache(prov)
	}
	opts := ecr.Options{Region: region, Credentials: creds, HTTPClient: s.hc, RetryMaxAttempts: 2}
	if s.ecrEndpoint != "" {
		opts.BaseEndpoint = aws.String(s.ecrEndpoint)
	}
	if fips {
		opts.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
	}
	out, err := ecr.New(opts).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, awsError(c, keys.RoleARN != "", err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "ECR GetAuthorizationToken returned no token", Temporary: true}
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(*d.AuthorizationToken)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "ECR GetAuthorizationToken returned a token that is not base64", Temporary: true}
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pw == "" {
		return authn.AuthConfig{}, time.Time{}, &Error{Credential: c.Name, Msg: "ECR GetAuthorizationToken returned a token that is not user:password", Temporary: true}
	}
	exp := s.now().Add(ecrTokenLifetime)
	if d.ExpiresAt != nil && d.ExpiresAt.After(s.now()) {
		exp = *d.ExpiresAt
	}
	return authn.AuthConfig{Username: user, Password: pw}, exp, nil
}

// awsError names what AWS said (its error code and message, which never
// carry the secret key) and whether retrying may help.
func awsError(c store.Credential, role bool, err error) error {
	op := "ECR GetAuthorizationToken"
	if role && strings.Contains(err.Error(), "AssumeRole") {
		op = "STS AssumeRole"
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		temporary := ae.ErrorFault() == smithy.FaultServer || ae.ErrorCode() == "ThrottlingException"
		return &Error{Credential: c.Name, Msg: op + " refused: " + ae.ErrorCode() + ": " + clipMsg(ae.ErrorMessage()), Temporary: temporary}
	}
	return &Error{Credential: c.Name, Msg: op + " failed: " + clipMsg(err.Error()), Temporary: true}
}

func clipMsg(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
