package apiserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"apoxy.dev/apoxy/internal/pki"
)

// Token layout. Keys are derived, not stored: an HMAC of the server secret over the project's
// name, UID and key revision. Deleting a project (new UID on re-create) or bumping
// spec.keyRevision invalidates every older key; no key material sits in the database.
const (
	adminTokenPrefix   = "apoxy_admin_"
	projectTokenPrefix = "apoxy_p_"
	// AdminGroup is the group of the admin key; it may do anything anywhere.
	AdminGroup = "system:masters"
	// AdminUser is the user name of the admin key.
	AdminUser = "apoxy:admin"
	// projectGroupPrefix + project name is the group a project key belongs to.
	projectGroupPrefix = "apoxy:project:"
)

// Keyring derives and verifies API keys from the server secret (dataDir/pki/secret.key).
type Keyring struct{ secret []byte }

// LoadOrCreateKeyring reads the secret at path, creating a random one on first start.
func LoadOrCreateKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		data = make([]byte, 32)
		if _, err := rand.Read(data); err != nil {
			return nil, err
		}
		data = []byte(hex.EncodeToString(data))
		if err := pki.WriteFileAtomic(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("apiserver: write secret: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("apiserver: read secret: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("apiserver: %s is not a hex secret of at least 16 bytes", path)
	}
	return &Keyring{secret: secret}, nil
}

func (k *Keyring) mac(parts ...string) string {
	h := hmac.New(sha256.New, k.secret)
	h.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h.Sum(nil))
}

// AdminToken is the bearer token of the server admin.
func (k *Keyring) AdminToken() string { return adminTokenPrefix + k.mac("admin") }

// ProjectToken is the bearer token that reaches exactly one project.
func (k *Keyring) ProjectToken(name, uid string, revision int32) string {
	rev := strconv.Itoa(int(revision))
	return projectTokenPrefix + name + "_" + rev + "_" + k.mac("project", name, uid, rev)
}

// ProjectOfToken says which project a project key is for (from its form alone: whether the
// key is valid is the API's to say).
func ProjectOfToken(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, projectTokenPrefix)
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, "_")
	return name, ok && name != ""
}

// projectKey is what the authenticator needs to know about a live project.
type projectKey struct {
	uid      string
	revision int32
}

// tokenAuthenticator turns bearer tokens into users: the admin, or a project's key holder.
type tokenAuthenticator struct {
	keys *Keyring
	// lookup returns the key parameters of a live project.
	lookup func(name string) (projectKey, bool)
}

func (a *tokenAuthenticator) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	switch {
	case strings.HasPrefix(token, adminTokenPrefix):
		if equal(token, a.keys.AdminToken()) {
			return &authenticator.Response{User: &user.DefaultInfo{Name: AdminUser, Groups: []string{AdminGroup, user.AllAuthenticated}}}, true, nil
		}
	case strings.HasPrefix(token, projectTokenPrefix):
		parts := strings.SplitN(strings.TrimPrefix(token, projectTokenPrefix), "_", 3)
		if len(parts) != 3 {
			return nil, false, nil
		}
		pk, ok := a.lookup(parts[0])
		if !ok || strconv.Itoa(int(pk.revision)) != parts[1] {
			return nil, false, nil
		}
		if equal(token, a.keys.ProjectToken(parts[0], pk.uid, pk.revision)) {
			return &authenticator.Response{User: &user.DefaultInfo{
				Name:   "apoxy:project-key:" + parts[0],
				Groups: []string{projectGroupPrefix + parts[0], user.AllAuthenticated},
			}}, true, nil
		}
	}
	return nil, false, nil
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (a *tokenAuthenticator) requestAuthenticator() authenticator.Request {
	return bearertoken.New(a)
}

// projectAuthorizer lets the admin and the project's own key in; every other authenticated user
// gets 403 with a reason naming the project.
func projectAuthorizer(project string) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		u := a.GetUser()
		if u == nil {
			return authorizer.DecisionDeny, "no user", nil
		}
		groups := u.GetGroups()
		if slices.Contains(groups, AdminGroup) {
			return authorizer.DecisionAllow, "", nil
		}
		if a.GetVerb() == "impersonate" {
			// A project key acting as another user or group would only spoof attribution
			// (audit, managedFields); nothing in a project needs it.
			return authorizer.DecisionDeny, "a project key may not impersonate users or groups", nil
		}
		if slices.Contains(groups, projectGroupPrefix+project) {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionDeny, projectForbidden(project), nil
	})
}

// adminAuthorizer admits only the admin key (server-level API: projects).
func adminAuthorizer() authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		if u := a.GetUser(); u != nil && slices.Contains(u.GetGroups(), AdminGroup) {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionDeny, "only the admin key manages projects; use a project's URL (/projects/NAME) with its key", nil
	})
}
