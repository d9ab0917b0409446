package tunnel

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	s := NewSigner([]byte("server secret of at least 16 bytes"))
	c := TokenClaims{Project: "p1", Node: "office", NodeUID: "uid-1", Rotation: "r1"}
	tok, err := s.Issue(c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok)
	if err != nil || got != c {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, c)
	}
	// Another server's secret, a token edited to name another project, garbage: refused.
	if _, err := NewSigner([]byte("another server's secret, 16+ bytes")).Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("another secret: %v", err)
	}
	other, _ := s.Issue(TokenClaims{Project: "p2", Node: "office", NodeUID: "uid-1"}, time.Now())
	parts, oparts := strings.Split(tok, "."), strings.Split(other, ".")
	if _, err := s.Verify(parts[0] + "." + oparts[1] + "." + parts[2]); !errors.Is(err, ErrBadToken) {
		t.Errorf("a token moved to another project: %v", err)
	}
	for _, bad := range []string{"", "x", "a.b.c", tok + "x"} {
		if _, err := s.Verify(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%q) = %v", bad, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := NewSigner([]byte("server secret of at least 16 bytes"))
	tok, _ := s.Issue(TokenClaims{Project: "p1", Node: "n", NodeUID: "u"}, time.Now())
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, in string) {
		if c, err := s.Verify(in); err == nil && in != tok && c.Project != "p1" {
			t.Fatalf("forged token verified: %+v", c)
		}
	})
}
