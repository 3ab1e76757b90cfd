package apple

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ClientConfig is the library's configuration at Apple (GET/POST
// /client/config, doc/apple-api.md §4). Every field is optional.
type ClientConfig struct {
	Envelope
	// CountryISO2ACode is the library's store country, upper case ("US").
	CountryISO2ACode string `json:"countryISO2ACode,omitempty"`
	// DefaultPlatform is "volumestore" (education) or "enterprisestore"
	// (business): the lookup's platform parameter.
	DefaultPlatform string `json:"defaultPlatform,omitempty"`
	// LocationName is the library's display name.
	LocationName string `json:"locationName,omitempty"`
	// NotificationAuthToken is the notification shared secret. It is a secret:
	// String, Format and LogValue redact it.
	NotificationAuthToken       string   `json:"notificationAuthToken,omitempty"`
	NotificationURL             string   `json:"notificationUrl,omitempty"`
	SubscribedNotificationTypes []string `json:"subscribedNotificationTypes,omitempty"`
	// WebsiteURL is https://school.apple.com or https://business.apple.com.
	WebsiteURL string `json:"websiteURL,omitempty"`
}

// ClaimedBy reports whether the configuration names a manager (mdmInfo) other
// than ours; an unclaimed token (no mdmInfo) is not claimed by anyone.
func (cc *ClientConfig) ClaimedBy(ourID string) (MDMInfo, bool) {
	if cc == nil || cc.MDMInfo == nil || cc.MDMInfo.ID == "" || cc.MDMInfo.ID == ourID {
		return MDMInfo{}, false
	}
	return *cc.MDMInfo, true
}

// String describes the configuration with the notification secret redacted.
func (cc ClientConfig) String() string {
	secret := ""
	if cc.NotificationAuthToken != "" {
		secret = "[REDACTED]"
	}
	mdm := "none"
	if cc.MDMInfo != nil {
		mdm = fmt.Sprintf("%+v", *cc.MDMInfo)
	}
	return fmt.Sprintf("apple.ClientConfig{uId: %q, location: %q, country: %q, platform: %q, mdmInfo: %s, "+
		"notificationUrl: %q, notificationAuthToken: %q, types: %v, tokenExpirationDate: %s, website: %q}",
		cc.UID, cc.LocationName, cc.CountryISO2ACode, cc.DefaultPlatform, mdm,
		cc.NotificationURL, secret, cc.SubscribedNotificationTypes, cc.TokenExpirationDate.Format(time.RFC3339), cc.WebsiteURL)
}

// Format makes every fmt verb print the redacted String.
func (cc ClientConfig) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(cc.String())) }

// LogValue implements slog.LogValuer without the notification secret.
func (cc ClientConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("uId", cc.UID), slog.String("location", cc.LocationName),
		slog.String("country", cc.CountryISO2ACode), slog.String("notificationUrl", cc.NotificationURL),
		slog.Bool("notificationSecretSet", cc.NotificationAuthToken != ""),
		slog.Time("tokenExpirationDate", cc.TokenExpirationDate),
	)
}

// ClientConfigRequest is the body of POST /client/config (doc/apple-api.md §4.2).
type ClientConfigRequest struct {
	// MDMInfo claims the token. SetClientConfig fills it with Config.MDM when
	// nil and Config.MDM.ID is set. Apple requires id, name and metadata (9723).
	MDMInfo *MDMInfo
	// NotificationURL and NotificationAuthToken go together (9710); Apple sends
	// a TEST_NOTIFICATION to the URL and rejects it if delivery fails (9728).
	NotificationURL       string
	NotificationAuthToken string
	// NotificationTypes is the complete set subscribed: nil leaves the field
	// out, an empty non-nil slice unsubscribes from everything.
	NotificationTypes []string
}

type wireClientConfigRequest struct {
	MDMInfo               *MDMInfo        `json:"mdmInfo,omitempty"`
	NotificationURL       string          `json:"notificationUrl,omitempty"`
	NotificationAuthToken string          `json:"notificationAuthToken,omitempty"`
	NotificationTypes     json.RawMessage `json:"notificationTypes,omitempty"`
}

type wireClientConfig struct {
	wireHeader
	CountryISO2ACode            string   `json:"countryISO2ACode"`
	DefaultPlatform             string   `json:"defaultPlatform"`
	LocationName                string   `json:"locationName"`
	NotificationAuthToken       string   `json:"notificationAuthToken"`
	NotificationURL             string   `json:"notificationUrl"`
	SubscribedNotificationTypes []string `json:"subscribedNotificationTypes"`
	WebsiteURL                  string   `json:"websiteURL"`
}

func (w *wireClientConfig) public() *ClientConfig {
	return &ClientConfig{
		Envelope:                    w.envelope(),
		CountryISO2ACode:            w.CountryISO2ACode,
		DefaultPlatform:             w.DefaultPlatform,
		LocationName:                w.LocationName,
		NotificationAuthToken:       w.NotificationAuthToken,
		NotificationURL:             w.NotificationURL,
		SubscribedNotificationTypes: w.SubscribedNotificationTypes,
		WebsiteURL:                  w.WebsiteURL,
	}
}

// decodeClientConfig decodes a client-config body.
func decodeClientConfig(b []byte) (*ClientConfig, *wireHeader, error) {
	var w wireClientConfig
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, err
	}
	return w.public(), &w.wireHeader, nil
}

// ClientConfig reads the library's configuration (GET /client/config); it is
// also how a token is validated (doc/apple-api.md §13).
//
// When the answer names another manager, the configuration is returned
// together with a *ClaimedError, so that the caller can show who holds the
// token. All other errors come with a nil configuration.
func (c *Client) ClientConfig(ctx context.Context, tok *Token) (*ClientConfig, error) {
	var cc *ClientConfig
	err := c.getJSON(ctx, tok, "/client/config", "", func(b []byte) (*wireHeader, error) {
		v, hdr, err := decodeClientConfig(b)
		cc = v
		return hdr, err
	})
	return configResult(cc, err)
}

// SetClientConfig writes the library's configuration (POST /client/config).
// With req.MDMInfo nil and Config.MDM.ID set, it claims the token with
// Config.MDM. The answer echoes the stored configuration; if it names another
// manager (someone claimed in between), the configuration comes back together
// with a *ClaimedError.
func (c *Client) SetClientConfig(ctx context.Context, tok *Token, req ClientConfigRequest) (*ClientConfig, error) {
	w := wireClientConfigRequest{
		MDMInfo:               req.MDMInfo,
		NotificationURL:       req.NotificationURL,
		NotificationAuthToken: req.NotificationAuthToken,
	}
	if w.MDMInfo == nil && c.cfg.MDM.ID != "" {
		mdm := c.cfg.MDM
		w.MDMInfo = &mdm
	}
	if req.NotificationTypes != nil {
		b, err := json.Marshal(req.NotificationTypes)
		if err != nil {
			return nil, fmt.Errorf("apple: POST /client/config: %w", err)
		}
		w.NotificationTypes = b
	}
	var cc *ClientConfig
	err := c.postJSON(ctx, tok, "/client/config", w, func(b []byte) (*wireHeader, error) {
		v, hdr, err := decodeClientConfig(b)
		cc = v
		return hdr, err
	})
	return configResult(cc, err)
}

// Claim sets only mdmInfo to Config.MDM (R12), leaving the notification
// settings as they are (the simulator and, presumably, Apple update only the
// fields present). Use it when adding an account or taking one over.
func (c *Client) Claim(ctx context.Context, tok *Token) (*ClientConfig, error) {
	if c.cfg.MDM.ID == "" {
		return nil, errors.New("apple: claim: Config.MDM.ID is not set")
	}
	return c.SetClientConfig(ctx, tok, ClientConfigRequest{})
}

// configResult keeps the decoded value only alongside a *ClaimedError.
func configResult[T any](v *T, err error) (*T, error) {
	if err == nil {
		return v, nil
	}
	if _, ok := errors.AsType[*ClaimedError](err); ok && v != nil {
		return v, err
	}
	return nil, err
}
