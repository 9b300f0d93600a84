package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/pullgate/pullgate/agent/cache"
	"github.com/pullgate/pullgate/agent/hubclient"
	"github.com/pullgate/pullgate/pkg/wire"
)

func TestStatusOf(t *testing.T) {
	re := func(code string) error {
		return fmt.Errorf("x: %w", &hubclient.ReplyError{Op: "token", Code: code, Message: "m"})
	}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{re(wire.CodeNotFound), http.StatusNotFound, wire.CodeNotFound},
		{re(wire.CodeInvalid), http.StatusBadRequest, wire.CodeInvalid},
		{re(wire.CodeForbidden), http.StatusForbidden, wire.CodeForbidden},
		{re(wire.CodeAmbiguous), http.StatusForbidden, wire.CodeAmbiguous},
		{re(wire.CodeInternal), http.StatusBadGateway, wire.CodeInternal},
		{re("something new"), http.StatusBadGateway, wire.CodeInternal},
		{fmt.Errorf("%w: bad", cache.ErrInvalid), http.StatusBadRequest, wire.CodeInvalid},
		{cache.ErrRefused, http.StatusServiceUnavailable, wire.CodeForbidden},
		{fmt.Errorf("%w: down", cache.ErrUnreachable), http.StatusServiceUnavailable, wire.CodeInternal},
		{cache.ErrResyncPending, http.StatusServiceUnavailable, wire.CodeInternal},
		{ErrNotReady, http.StatusServiceUnavailable, wire.CodeInternal},
		{errors.New("anything"), http.StatusServiceUnavailable, wire.CodeInternal},
	} {
		if s, c := StatusOf(tc.err); s != tc.status || c != tc.code {
			t.Errorf("StatusOf(%v) = %d %s, want %d %s", tc.err, s, c, tc.status, tc.code)
		}
	}
}
