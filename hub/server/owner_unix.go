//go:build unix

package server

import (
	"io/fs"
	"syscall"
)

// ownedByRoot reports whether root owns the file, as a Kubernetes Secret
// volume's files are (group fsGroup, mode 0440).
func ownedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
