package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// MinKeySize is the least length of a KeyRing key, in bytes.
const MinKeySize = 32

// MaxKeys bounds a KeyRing: opening a cookie tries every key, so the ring stays short.
const MaxKeys = 8

// KeyRing holds the keys that protect the RP's cookies, newest first. The newest key seals
// every cookie the RP sets; every key opens, so cookies sealed before a rotation stay valid
// while their key is still in the ring (the server keeps a previous key for one
// absoluteTimeout). Replicas given the same ring honour each other's cookies: the RP keeps no
// session state of its own. Each key is at least MinKeySize random bytes.
type KeyRing [][]byte

// hkdfInfo separates the keys derived for cookies from any other use of the same secret.
const hkdfInfo = "apoxy.dev/apoxy oidc cookie v1"

// sealer encrypts and authenticates cookie values with AES-256-GCM under the ring's keys.
type sealer struct {
	aeads []cipher.AEAD // aeads[0] seals
}

func newSealer(keys KeyRing) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no session keys")
	}
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("%d session keys, at most %d", len(keys), MaxKeys)
	}
	s := &sealer{}
	for i, k := range keys {
		if len(k) < MinKeySize {
			return nil, fmt.Errorf("session key %d is %d bytes, under %d", i, len(k), MinKeySize)
		}
		// A derived key, so the secret the server hands out can serve other purposes safely.
		dk, err := hkdf.Key(sha256.New, k, nil, hkdfInfo, 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(dk)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// overhead is what sealing adds to a plaintext: the nonce and the tag.
const overhead = 12 + 16

// seal returns nonce || ciphertext || tag of plain under the newest key, bound to aad.
func (s *sealer) seal(plain, aad []byte) []byte {
	a := s.aeads[0]
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	rand.Read(out) // never fails (crypto/rand panics rather than return an error)
	return a.Seal(out, out, plain, aad)
}

// open authenticates and decrypts sealed with any key of the ring; key is the index of the
// key that opened it (0 is the newest). ok is false when no key does.
func (s *sealer) open(sealed, aad []byte) (plain []byte, key int, ok bool) {
	if len(sealed) < overhead {
		return nil, 0, false
	}
	nonce, ct := sealed[:12], sealed[12:]
	for i, a := range s.aeads {
		if p, err := a.Open(nil, nonce, ct, aad); err == nil {
			return p, i, true
		}
	}
	return nil, 0, false
}
