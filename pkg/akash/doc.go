// Package akash holds what pullgate needs to know about Akash Network
// without importing its SDK: lease ids and the namespace a provider runs a
// lease in, account addresses, and ADR-036 signatures over arbitrary data.
package akash
