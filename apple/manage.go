package apple

import (
	"context"
	"encoding/json"
	"errors"
)

// ManageAssetsRequest is the body of POST /assets/associate and
// /assets/disassociate (doc/apple-api.md §5.4): every asset × every target (users and serial
// numbers). Within one request at most Limits.MaxAssets unique assets and
// MaxClientUserIDs / MaxSerialNumbers unique ids, without duplicates — use
// SplitManage.
type ManageAssetsRequest struct {
	Assets        []AssetRef `json:"assets"`
	ClientUserIDs []string   `json:"clientUserIds,omitempty"`
	SerialNumbers []string   `json:"serialNumbers,omitempty"`
}

// RevokeAssetsRequest is the body of POST /assets/revoke (doc/apple-api.md §5.5): all revocable
// assets of these users and devices. Limits: MaxRevokeClientUserIDs /
// MaxRevokeSerialNumbers — use SplitRevoke.
type RevokeAssetsRequest struct {
	ClientUserIDs []string `json:"clientUserIds,omitempty"`
	SerialNumbers []string `json:"serialNumbers,omitempty"`
}

// EventResponse is the answer of the asynchronous endpoints: the event to
// follow with EventStatus (or ASSET_MANAGEMENT / USER_MANAGEMENT
// notifications). A 200 answer only means Apple accepted the work; never infer
// that it succeeded (doc/apple-api.md §15).
type EventResponse struct {
	Envelope
	EventID string `json:"eventId"`
}

type wireEventResponse struct {
	wireHeader
	EventID string `json:"eventId"`
}

var errNoEventID = errors.New("answer has no eventId")

// decodeEventResponse decodes an EventResponse body. An answer without an
// error must carry an eventId: without it the caller could not follow the work.
func decodeEventResponse(b []byte) (*EventResponse, *wireHeader, error) {
	var w wireEventResponse
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, err
	}
	if w.EventID == "" && w.ErrorNumber == 0 {
		return nil, &w.wireHeader, errNoEventID
	}
	return &EventResponse{Envelope: w.envelope(), EventID: w.EventID}, &w.wireHeader, nil
}

// Associate assigns every asset of req to every user and device of req (POST
// /assets/associate). The work is asynchronous: 9609 (unknown user) and 9709
// (not enough licenses) arrive in EventStatus failures or notifications.
// Synchronous errors (limits, duplicates, 9707 not device-assignable) mean
// nothing was started.
//
// The request is not resent after a network failure that may have reached
// Apple (see TransportError). If the answer names another manager, the
// EventResponse is returned with the *ClaimedError: Apple did accept the work.
func (c *Client) Associate(ctx context.Context, tok *Token, req ManageAssetsRequest) (*EventResponse, error) {
	return c.postEvent(ctx, tok, "/assets/associate", req)
}

// Disassociate takes every asset of req from every user and device of req
// (POST /assets/disassociate). Non-revocable assets (books) fail with 9706.
func (c *Client) Disassociate(ctx context.Context, tok *Token, req ManageAssetsRequest) (*EventResponse, error) {
	return c.postEvent(ctx, tok, "/assets/disassociate", req)
}

// Revoke takes all revocable assets from the users and devices of req (POST
// /assets/revoke).
func (c *Client) Revoke(ctx context.Context, tok *Token, req RevokeAssetsRequest) (*EventResponse, error) {
	return c.postEvent(ctx, tok, "/assets/revoke", req)
}

func (c *Client) postEvent(ctx context.Context, tok *Token, path string, body any) (*EventResponse, error) {
	var ev *EventResponse
	err := c.postJSON(ctx, tok, path, body, func(b []byte) (*wireHeader, error) {
		v, hdr, err := decodeEventResponse(b)
		ev = v
		return hdr, err
	})
	return configResult(ev, err)
}
