//go:build !unix

package server

import "os"

// Without flock the data directory is not locked.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) error { return nil }

const openNoFollow = 0
