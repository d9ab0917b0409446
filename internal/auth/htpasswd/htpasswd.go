// Package htpasswd reads Apache htpasswd files and verifies passwords against them, for an
// AuthPolicy's basicAuth (issue 14). Accepted hashes: bcrypt ($2a$, $2b$, $2y$; cost 4..14,
// higher costs are refused as a CPU denial-of-service risk), SHA-crypt ($5$, $6$), APR1-MD5
// ($apr1$), and the legacy unsalted {SHA} and salted {SSHA}, which are accepted but reported
// (Insecure) so the policy's status can warn. Plaintext and DES crypt lines are refused.
//
// A file is parsed whole: any bad line or a duplicate user refuses it, and the error names the
// line number, never its content (a Secret's hashes must not reach status or logs).
package htpasswd

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// MaxBcryptCost is the highest bcrypt cost accepted: each verification at cost 14 takes about
// a second of CPU, and a client can make the gateway pay it per request.
const MaxBcryptCost = 14

// minBcryptCost is bcrypt's own minimum.
const minBcryptCost = 4

// File is a parsed htpasswd file.
type File struct {
	users map[string]hasher
	// insecure are the users whose hash is {SHA} or {SSHA}, sorted.
	insecure []string
}

// hasher verifies a password against one stored hash.
type hasher interface {
	verify(password []byte) bool
}

// Error is a parse error: the 1-based line and what is wrong with it (never the line itself).
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads an htpasswd file: one "user:hash" per line; blank lines and lines starting with
// "#" are skipped.
func Parse(data []byte) (*File, error) {
	f := &File{users: map[string]hasher{}}
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line = bytes.TrimRight(line, "\r")
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(string(line), ":")
		if !ok {
			return nil, &Error{n, `not "user:hash"`}
		}
		if user == "" || strings.TrimSpace(user) != user {
			return nil, &Error{n, "empty user name, or spaces around it"}
		}
		if _, dup := f.users[user]; dup {
			return nil, &Error{n, fmt.Sprintf("user %q appears twice", user)}
		}
		h, insecure, err := parseHash(hash)
		if err != nil {
			return nil, &Error{n, err.Error()}
		}
		f.users[user] = h
		if insecure {
			f.insecure = append(f.insecure, user)
		}
	}
	slices.Sort(f.insecure)
	return f, nil
}

func parseHash(s string) (h hasher, insecure bool, err error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return nil, false, fmt.Errorf("malformed bcrypt hash")
		}
		if cost < minBcryptCost || cost > MaxBcryptCost {
			return nil, false, fmt.Errorf("bcrypt cost %d is outside %d..%d (higher costs let clients spend the gateway's CPU); make it with htpasswd -B -C 10", cost, minBcryptCost, MaxBcryptCost)
		}
		return bcryptHash(s), false, nil
	case strings.HasPrefix(s, "$5$"), strings.HasPrefix(s, "$6$"):
		h, err := parseSHACrypt(s)
		return h, false, err
	case strings.HasPrefix(s, "$apr1$"):
		h, err := parseAPR1(s)
		return h, false, err
	case strings.HasPrefix(s, "{SHA}"):
		sum, err := base64.StdEncoding.DecodeString(s[len("{SHA}"):])
		if err != nil || len(sum) != sha1.Size {
			return nil, false, fmt.Errorf("malformed {SHA} hash")
		}
		return shaHash{sum: sum}, true, nil
	case strings.HasPrefix(s, "{SSHA}"):
		b, err := base64.StdEncoding.DecodeString(s[len("{SSHA}"):])
		if err != nil || len(b) <= sha1.Size {
			return nil, false, fmt.Errorf("malformed {SSHA} hash")
		}
		return shaHash{sum: b[:sha1.Size], salt: b[sha1.Size:]}, true, nil
	}
	return nil, false, fmt.Errorf("unsupported hash (plaintext, DES crypt or unknown scheme); make it with htpasswd -B")
}

// Verify reports whether password is user's. Unknown users and wrong passwords are both false.
func (f *File) Verify(user, password string) bool {
	h, ok := f.users[user]
	if !ok {
		return false
	}
	return h.verify([]byte(password))
}

// Len is the number of users.
func (f *File) Len() int { return len(f.users) }

// Insecure lists the users whose hash is {SHA} or {SSHA} (fast to brute-force), sorted.
func (f *File) Insecure() []string { return slices.Clone(f.insecure) }

type bcryptHash string

func (h bcryptHash) verify(pw []byte) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), pw) == nil
}

type shaHash struct{ sum, salt []byte }

func (h shaHash) verify(pw []byte) bool {
	d := sha1.New()
	d.Write(pw)
	d.Write(h.salt)
	return subtle.ConstantTimeCompare(d.Sum(nil), h.sum) == 1
}
