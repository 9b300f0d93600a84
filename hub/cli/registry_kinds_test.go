package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pullgate/pullgate/hub/credential"
	"github.com/pullgate/pullgate/hub/upstream"
)

func TestRegistryKindsCLI(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	awsSecret, pasted := secret(), secret()
	const ecrHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	h.ok("", "workspace", "create", "acme")

	// ECR with AWS keys: the key id on the command line, the secret key on stdin.
	out := h.ok(awsSecret+"\n", "registry", "add", "-w", "acme", "--name", "ecr", "--host", ecrHost,
		"--aws-access-key-id", "AKIAPULLGATECLI00001", "--aws-role-arn", "arn:aws:iam::123456789012:role/puller", "--password-stdin")
	if !strings.Contains(out, "kind ecr") {
		t.Errorf("add ecr: %s", out)
	}
	c, _ := h.st.GetCredential(ctx, "acme", "ecr")
	sealed, _ := h.st.CredentialSecret(ctx, c.ID, c.Version)
	s, err := credential.Open(h.sealer, c, sealed)
	if err != nil || s.AWS == nil || s.AWS.AccessKeyID != "AKIAPULLGATECLI00001" || s.AWS.SecretAccessKey != awsSecret ||
		s.AWS.RoleARN != "arn:aws:iam::123456789012:role/puller" || c.Username != "AWS" {
		t.Fatalf("stored ecr secret wrong: %v", err)
	}

	// A pasted token: warned about on stderr, expiry in get.
	code, out, errOut := h.run(pasted, "registry", "add", "-w", "acme", "--name", "ecr-tmp", "--host", ecrHost+"/tmp",
		"--token-expires-at", time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339), "--password-stdin")
	if code != 0 || !strings.Contains(errOut, "warning: registry \"ecr-tmp\": the pasted ECR token expires at") {
		t.Fatalf("pasted: exit %d\n%s\n%s", code, out, errOut)
	}
	out = h.ok("", "registry", "get", "-w", "acme", "ecr-tmp")
	if !strings.Contains(out, "ecr_token") || !strings.Contains(out, "WARNING") {
		t.Errorf("get pasted:\n%s", out)
	}
	out = h.ok("", "registry", "list", "-w", "acme")
	if !strings.Contains(out, "AUTH") || !strings.Contains(out, "aws_assume_role") {
		t.Errorf("list:\n%s", out)
	}

	// registry test prints the token step for kinds that fetch their own.
	exp := time.Now().Add(12 * time.Hour)
	h.setCheck(upstream.CheckResult{Reachable: true, AuthScheme: "basic", Authenticated: true, Kind: "ecr", Auth: "aws_keys",
		TokenSource: "AWS ECR GetAuthorizationToken", TokenObtained: true, ExpiresAt: &exp})
	out = h.ok("", "registry", "test", "-w", "acme", "ecr")
	if !strings.Contains(out, "obtain token: AWS ECR GetAuthorizationToken") || !strings.Contains(out, "kind ecr, auth aws_keys") {
		t.Errorf("test:\n%s", out)
	}
	h.setCheck(upstream.CheckResult{Kind: "ecr", Auth: "aws_keys", TokenSource: "AWS ECR GetAuthorizationToken",
		Error: "obtain token: registry credential ecr: ECR GetAuthorizationToken refused: UnrecognizedClientException: The security token included in the request is invalid."})
	code, out, errOut = h.run("", "registry", "test", "-w", "acme", "ecr")
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "skipped") || !strings.Contains(errOut, "UnrecognizedClientException") {
		t.Errorf("failed token: exit %d\n%s\n%s", code, out, errOut)
	}

	// Usage errors and refused input.
	code, _, errOut = h.run(pasted, "registry", "add", "-w", "acme", "--name", "x", "--host", ecrHost, "--token-expires-at", "tomorrow", "--password-stdin")
	if code != 2 || !strings.Contains(errOut, "--token-expires-at") {
		t.Errorf("bad expiry: exit %d %s", code, errOut)
	}
	code, _, errOut = h.run("{not json", "registry", "add", "-w", "acme", "--name", "gcr", "--host", "gcr.io", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "service-account JSON: not valid JSON") {
		t.Errorf("bad key: exit %d %s", code, errOut)
	}
	for _, o := range h.outputs {
		if strings.Contains(o, awsSecret) || strings.Contains(o, pasted) {
			t.Fatalf("secret in CLI output: %s", o)
		}
	}
}
