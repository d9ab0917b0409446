package collector

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// checkNoEscape refuses a target under dir that a symlink inside dir leads out of. What does
// not exist yet cannot be a symlink: the deepest existing ancestor of target is resolved and
// must stay under dir. dir itself may be a symlink (it is the operator's choice). A missing
// dir (the API server validating for a gateway host) leaves only the lexical checks.
func checkNoEscape(dir, target string) error {
	root, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errors.New("the project's file directory cannot be read")
	}
	p := target
	for {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p || !strings.HasPrefix(parent, filepath.Clean(dir)) {
			return nil
		}
		p = parent
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return errors.New("cannot be resolved inside the project's file directory")
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return errors.New("leads out of the project's file directory through a symlink")
	}
	return nil
}

// prepareFile creates the directories of a file exporter's path and checks again, now that
// they exist, that no symlink leads out of dir.
func prepareFile(dir, abs string) error {
	// Before MkdirAll too: it follows symlinks and would create directories outside.
	if err := checkNoEscape(dir, abs); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return errors.New("cannot create its directory in the project's file directory")
	}
	if err := checkNoEscape(dir, abs); err != nil {
		return err
	}
	if fi, err := os.Lstat(abs); err == nil && !fi.Mode().IsRegular() {
		return errors.New("exists and is not a regular file")
	}
	return nil
}
