package translate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// SessionKeyPeriod is how often a project's OIDC session-cookie key rotates.
const SessionKeyPeriod = 24 * time.Hour

// sessionKeys returns the keys that seal and open a project's OIDC session cookies at now,
// newest first (design §2.4: a key per project that the server rotates, shared by every
// replica through the snapshot). Keys are derived from the server's secret, the project's
// scope and the rotation period's number, so replicas with the same secret agree without
// coordination; the previous keys stay valid for one absoluteTimeout, so a session sealed
// just before a rotation lives out its time. nil when the server has no secret.
func sessionKeys(secret []byte, scope string, now time.Time, absolute time.Duration) []ir.SecretString {
	if len(secret) == 0 {
		return nil
	}
	period := now.Unix() / int64(SessionKeyPeriod/time.Second)
	n := int64((absolute+SessionKeyPeriod-1)/SessionKeyPeriod) + 1
	keys := make([]ir.SecretString, 0, n)
	for i := range n {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte("apoxy oidc session key\x00" + scope + "\x00"))
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(period-i))
		mac.Write(b[:])
		keys = append(keys, ir.SecretString(mac.Sum(nil)))
	}
	return keys
}
