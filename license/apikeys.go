package license

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"orchard/db"
	"orchard/model"
)

// KeyPrefix starts every API key secret, so leaked keys are easy to recognise and scan for.
const KeyPrefix = "orch_"

// HashKey is the stored form of a key secret. Secrets carry 256 random bits, so a plain
// SHA-256 (no salt, no stretching) cannot be reversed and keeps authentication a single
// indexed lookup.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// CreateAPIKey creates a key and returns it with its secret, which is never stored and so
// can be shown only now.
func (s *Service) CreateAPIKey(ctx context.Context, actor Actor, name string, role model.Role) (*model.APIKey, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return nil, "", model.FieldError([]string{"input", "name"}, "name must be 1 to 200 characters")
	}
	if !role.Valid() {
		return nil, "", model.FieldError([]string{"input", "role"}, "role must be ADMIN, OPERATOR or VIEWER")
	}
	secret, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	k := &model.APIKey{
		Name:      name,
		Prefix:    secret[:len(KeyPrefix)+6],
		Hash:      HashKey(secret),
		Role:      role,
		CreatedBy: actor.String(),
		CreatedAt: s.now(),
	}
	err = s.db.Tx(ctx, func(tx *db.DB) error {
		if err := tx.InsertAPIKey(ctx, k); err != nil {
			return fmt.Errorf("store api key: %w", err)
		}
		return tx.InsertAudit(ctx, actor.audit(&model.AuditEvent{
			Action: "api_key.create", SubjectType: "ApiKey", SubjectID: &k.ID,
			Message: fmt.Sprintf("API key %q created with role %s", k.Name, k.Role),
		}))
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// RevokeAPIKey revokes a key. A key may not revoke itself: that would lock out a caller in
// the middle of its work, and an admin who wants it can use another key.
func (s *Service) RevokeAPIKey(ctx context.Context, actor Actor, id int64) (*model.APIKey, error) {
	if actor.Kind == model.ActorAPIKey && actor.ID == fmt.Sprint(id) {
		return nil, model.FieldError([]string{"input", "id"}, "a key cannot revoke itself; use another ADMIN key")
	}
	var k *model.APIKey
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		if err = tx.RevokeAPIKey(ctx, id, s.now()); err != nil {
			return fmt.Errorf("revoke api key: %w", err)
		}
		if k, err = tx.APIKeyByID(ctx, id); err != nil {
			if errors.Is(err, model.ErrNotFound) {
				return model.Errorf(model.CodeNotFound, "no API key with that id")
			}
			return err
		}
		return tx.InsertAudit(ctx, actor.audit(&model.AuditEvent{
			Action: "api_key.revoke", SubjectType: "ApiKey", SubjectID: &k.ID,
			Message: fmt.Sprintf("API key %q revoked", k.Name),
		}))
	})
	return k, err
}

// BootstrapAdminKey creates the first ADMIN key of a fresh install (one without any key) and
// returns its secret; created is false when the install already has keys. Replicas starting
// together on a fresh database create one key between them.
func (s *Service) BootstrapAdminKey(ctx context.Context) (secret string, created bool, err error) {
	n, err := s.db.CountAPIKeysAll(ctx)
	if err != nil || n > 0 {
		return "", false, err
	}
	_, won, err := s.db.ClaimSetting(ctx, "bootstrap_admin_key", s.now().Format("2006-01-02T15:04:05Z"))
	if err != nil || !won {
		return "", false, err
	}
	_, secret, err = s.CreateAPIKey(ctx, SystemActor, "bootstrap admin", model.RoleAdmin)
	if err != nil {
		return "", false, err
	}
	return secret, true, nil
}
