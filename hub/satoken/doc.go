// Package satoken verifies Kubernetes projected service-account tokens
// (KEP-4412: the kubelet passes them to the image credential provider when
// tokenAttributes is configured) against a cluster's service-account issuer
// keys, given as a JWKS (the output of `kubectl get --raw /openid/v1/jwks`).
//
// The hub uses the verified namespace and service account to choose which
// tenant's install answers a pull on a shared cluster (DESIGN.md, security
// invariant 4), so every check fails closed: a forged, tampered, expired,
// not-yet-valid, wrong-audience or wrong-issuer token, or one that is not a
// well-formed service-account token, yields an error and no Claims.
//
// Errors wrap one of the sentinel errors below and never contain the token
// text. Claim values (namespace, names) may appear, quoted and truncated;
// they are not secret.
package satoken
