// Package e2e holds end-to-end tests of the built binaries against real
// registries and clients. They run with `make e2e` (build tag e2e).
package e2e
