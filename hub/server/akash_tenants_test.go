package server

import (
	"strings"
	"testing"
)

func TestAkashTenantsFlag(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flag      *bool // nil: not given
		env       string
		publicURL string
		want      bool
		wantErr   string
	}{
		{name: "default off"},
		{name: "flag", flag: ptr(true), publicURL: "https://hub.example", want: true},
		{name: "env", env: "true", publicURL: "https://hub.example", want: true},
		{name: "flag wins over env", flag: ptr(false), env: "true", publicURL: "https://hub.example"},
		{name: "env not a bool", env: "yes please", publicURL: "https://hub.example", wantErr: "want true or false"},
		{name: "no public URL", flag: ptr(true), wantErr: "needs --public-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envAkashTenants, tc.env)
			cfg := Config{PublicURL: tc.publicURL}
			if tc.flag != nil {
				cfg.AkashTenants = *tc.flag
			}
			err := akashTenantsFlag(&cfg, tc.flag != nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.AkashTenants != tc.want {
				t.Fatalf("AkashTenants %v, %v; want %v", cfg.AkashTenants, err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
