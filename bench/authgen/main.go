// Command authgen makes what the AuthPolicy rows of `make bench` need: an RSA key set (as a
// local JWKS), a token it signed that never expires during a run, and a bcrypt htpasswd line.
// It renders the AuthPolicy template with them and prints the two Authorization header values.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"
)

func main() {
	tmpl := flag.String("template", "bench/proxies/apoxy-auth.yaml", "AuthPolicy template")
	out := flag.String("out", "", "rendered YAML")
	backend := flag.String("backend", "19000", "bench backend port")
	flag.Parse()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bench", Algorithm: "RS256", Use: "sig"}}})
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "bench"))
	if err != nil {
		log.Fatal(err)
	}
	token, err := josejwt.Signed(sig).Claims(map[string]any{"iss": "https://bench.local/", "sub": "bench-user", "aud": "bench",
		"exp": time.Now().Add(24 * time.Hour).Unix()}).Serialize()
	if err != nil {
		log.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("bench-password"), 10)
	t, err := os.ReadFile(*tmpl)
	if err != nil {
		log.Fatal(err)
	}
	yaml := strings.NewReplacer("@BACKEND@", *backend, "@JWKS@", string(jwks), "@HTPASSWD@", "bench:"+string(hash)).Replace(string(t))
	if err := os.WriteFile(*out, []byte(yaml), 0o600); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Authorization: Bearer " + token)
	fmt.Println("Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("bench:bench-password")))
}
