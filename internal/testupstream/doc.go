// Package testupstream provides real upstream container registries, with
// real authentication, for pullgate's tests.
//
// Two kinds of registry are available, both described by a *Registry:
//
//   - StartInProcess serves go-containerregistry's registry handler over
//     plain HTTP on 127.0.0.1, behind an auth layer that speaks either HTTP
//     Basic auth (WithBasicAuth) or the Docker token flow (WithTokenAuth),
//     or nothing at all. It records every request so tests can assert on
//     exactly what an upstream saw, and can redirect blob downloads to a
//     fake CDN that refuses credentials (WithBlobRedirect).
//   - StartDistribution runs a real distribution ("docker-registry")
//     binary as a child process with filesystem storage and htpasswd auth,
//     optionally as a pull-through cache (ProcProxy).
//
// PushRandomImage and PushBlobImage seed either kind with images; the
// latter streams layers of any size without holding them in memory.
//
// The package is a test helper: every function takes a testing.TB, fails
// the test on error and registers its own cleanup.
package testupstream
