package cli

import "github.com/spf13/pflag"

// ifChanged is &v when the flag was given, nil otherwise: an update
// request's "absent fields are left as they are".
func ifChanged[T any](f *pflag.FlagSet, name string, v T) *T {
	if !f.Changed(name) {
		return nil
	}
	return &v
}
