package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable is what callers are told when the database cannot be
// reached (PostgreSQL down, restarting or cut off): the request may
// succeed later and nothing was changed by this one.
var ErrUnavailable = errors.New("database unavailable")

// IsUnavailable reports whether err means the database could not be
// reached, rather than that it refused or failed the statement: a refused
// or broken connection, or PostgreSQL shutting down or starting up. The
// hub answers those with 503 instead of a 500, and the pool reconnects on
// its own once the database is back.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: admin or crash
		// shutdown, cannot connect now (starting up).
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	// pgx reports a connection closed under it as "conn closed".
	return pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}
