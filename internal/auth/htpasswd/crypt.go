package htpasswd

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// The crypt(3) alphabet, least significant six bits first.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// b64From24 appends n characters encoding the 24-bit value b2:b1:b0, low bits first.
func b64From24(out []byte, b2, b1, b0 byte, n int) []byte {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for ; n > 0; n-- {
		out = append(out, itoa64[w&0x3f])
		w >>= 6
	}
	return out
}

func validCryptChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(itoa64, s[i]) < 0 {
			return false
		}
	}
	return true
}

// ---- SHA-crypt ($5$ SHA-256, $6$ SHA-512), as specified by Ulrich Drepper ----

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxRounds     = 999999999
	// shaCryptCapRounds refuses round counts that make one verification cost more CPU than a
	// bcrypt hash at MaxBcryptCost would.
	shaCryptCapRounds = 5000000
)

type shaCrypt struct {
	sha512 bool
	rounds int
	custom bool // "rounds=" was given (it is part of the output)
	salt   string
	sum    string // the encoded hash after the salt
}

func parseSHACrypt(s string) (hasher, error) {
	h := &shaCrypt{sha512: s[1] == '6', rounds: shaCryptDefaultRounds}
	rest := s[3:]
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.Atoi(num)
		if !found || err != nil {
			return nil, fmt.Errorf("malformed SHA-crypt rounds")
		}
		n = min(max(n, shaCryptMinRounds), shaCryptMaxRounds)
		if n > shaCryptCapRounds {
			return nil, fmt.Errorf("SHA-crypt rounds %d exceed %d (they let clients spend the gateway's CPU)", n, shaCryptCapRounds)
		}
		h.rounds, h.custom, rest = n, true, after
	}
	salt, sum, ok := strings.Cut(rest, "$")
	want := 43
	if h.sha512 {
		want = 86
	}
	if !ok || len(salt) > 16 || len(sum) != want || !validCryptChars(sum) || strings.Contains(salt, "$") {
		return nil, fmt.Errorf("malformed SHA-crypt hash")
	}
	h.salt, h.sum = salt, sum
	return h, nil
}

func (h *shaCrypt) verify(pw []byte) bool {
	got := shaCryptSum(h.sha512, pw, []byte(h.salt), h.rounds)
	return subtle.ConstantTimeCompare(got, []byte(h.sum)) == 1
}

// shaCryptSum computes the encoded SHA-crypt digest of pw with salt over rounds.
func shaCryptSum(is512 bool, pw, salt []byte, rounds int) []byte {
	newHash, size := sha256.New, sha256.Size
	if is512 {
		newHash, size = sha512.New, sha512.Size
	}
	sum := func(d hash.Hash) []byte { return d.Sum(make([]byte, 0, size)) }
	// Digest B: pw, salt, pw.
	d := newHash()
	d.Write(pw)
	d.Write(salt)
	d.Write(pw)
	b := sum(d)
	// Digest A.
	d = newHash()
	d.Write(pw)
	d.Write(salt)
	n := len(pw)
	for ; n > size; n -= size {
		d.Write(b)
	}
	d.Write(b[:n])
	for n = len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			d.Write(b)
		} else {
			d.Write(pw)
		}
	}
	a := sum(d)
	// P: the digest of pw repeated len(pw) times, stretched to len(pw) bytes.
	d = newHash()
	for range len(pw) {
		d.Write(pw)
	}
	dp := sum(d)
	p := make([]byte, 0, len(pw))
	for len(p)+size <= len(pw) {
		p = append(p, dp...)
	}
	p = append(p, dp[:len(pw)-len(p)]...)
	// S: the digest of salt repeated 16 + a[0] times, cut to len(salt) bytes.
	d = newHash()
	for range 16 + int(a[0]) {
		d.Write(salt)
	}
	ds := sum(d)
	s := ds[:len(salt)]
	// The rounds.
	c := a
	for i := range rounds {
		d = newHash()
		if i&1 != 0 {
			d.Write(p)
		} else {
			d.Write(c)
		}
		if i%3 != 0 {
			d.Write(s)
		}
		if i%7 != 0 {
			d.Write(p)
		}
		if i&1 != 0 {
			d.Write(c)
		} else {
			d.Write(p)
		}
		c = d.Sum(c[:0])
	}
	out := make([]byte, 0, 86)
	if !is512 {
		for _, g := range [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}} {
			out = b64From24(out, c[g[0]], c[g[1]], c[g[2]], 4)
		}
		return b64From24(out, 0, c[31], c[30], 3)
	}
	for _, g := range [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10},
		{53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}} {
		out = b64From24(out, c[g[0]], c[g[1]], c[g[2]], 4)
	}
	return b64From24(out, 0, 0, c[63], 2)
}

// ---- APR1-MD5 (Apache's variant of md5crypt, magic "$apr1$") ----

type apr1 struct{ salt, sum string }

func parseAPR1(s string) (hasher, error) {
	salt, sum, ok := strings.Cut(s[len("$apr1$"):], "$")
	if !ok || salt == "" || len(salt) > 8 || len(sum) != 22 || !validCryptChars(sum) {
		return nil, fmt.Errorf("malformed APR1 hash")
	}
	return apr1{salt: salt, sum: sum}, nil
}

func (h apr1) verify(pw []byte) bool {
	return subtle.ConstantTimeCompare(apr1Sum(pw, []byte(h.salt)), []byte(h.sum)) == 1
}

// apr1Sum computes the encoded APR1 digest of pw with salt.
func apr1Sum(pw, salt []byte) []byte {
	const magic = "$apr1$"
	d := md5.New()
	d.Write(pw)
	d.Write(salt)
	d.Write(pw)
	alt := d.Sum(nil)
	d = md5.New()
	d.Write(pw)
	d.Write([]byte(magic))
	d.Write(salt)
	for n := len(pw); n > 0; n -= 16 {
		d.Write(alt[:min(n, 16)])
	}
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			d.Write([]byte{0})
		} else {
			d.Write(pw[:1])
		}
	}
	f := d.Sum(nil)
	for i := range 1000 {
		d = md5.New()
		if i&1 != 0 {
			d.Write(pw)
		} else {
			d.Write(f)
		}
		if i%3 != 0 {
			d.Write(salt)
		}
		if i%7 != 0 {
			d.Write(pw)
		}
		if i&1 != 0 {
			d.Write(f)
		} else {
			d.Write(pw)
		}
		f = d.Sum(f[:0])
	}
	out := make([]byte, 0, 22)
	out = b64From24(out, f[0], f[6], f[12], 4)
	out = b64From24(out, f[1], f[7], f[13], 4)
	out = b64From24(out, f[2], f[8], f[14], 4)
	out = b64From24(out, f[3], f[9], f[15], 4)
	out = b64From24(out, f[4], f[10], f[5], 4)
	return b64From24(out, 0, 0, f[11], 2)
}
