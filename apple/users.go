package apple

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strconv"
	"strings"
)

// UsersQuery filters GET /users (doc/apple-api.md §6.2). Zero values leave a filter out.
type UsersQuery struct {
	ClientUserID string
	// ActiveOnly lists only Registered/Associated users: the live set (a
	// clientUserId may otherwise appear several times, with Retired entries).
	ActiveOnly  bool
	RetiredOnly bool
	// SinceVersionID asks only for the users changed since that version; see
	// AssignmentsQuery.SinceVersionID.
	SinceVersionID string
	// StartPage resumes a listing at this page index (default 0).
	StartPage int
	// Parallel > 1 prefetches up to that many pages concurrently (max 5).
	Parallel int
}

func (q UsersQuery) values() url.Values {
	v := url.Values{}
	setString(v, "clientUserId", q.ClientUserID)
	if q.ActiveOnly {
		v.Set("activeOnly", strconv.FormatBool(true))
	}
	if q.RetiredOnly {
		v.Set("retiredOnly", strconv.FormatBool(true))
	}
	setString(v, "sinceVersionId", q.SinceVersionID)
	return v
}

// UsersPage is one page of GET /users.
type UsersPage struct {
	Envelope
	PageInfo
	Users []User `json:"users"`
}

func (p *UsersPage) pageInfo() *PageInfo { return &p.PageInfo }

type wireUsersPage struct {
	wireHeader
	wirePageInfo
	Users []User `json:"users"`
}

// decodeUsersPage decodes one GET /users body.
func decodeUsersPage(b []byte) (*UsersPage, *wireHeader, error) {
	var w wireUsersPage
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, err
	}
	if err := checkPageInfo(&w.wirePageInfo); err != nil {
		return nil, nil, err
	}
	return &UsersPage{Envelope: w.envelope(), PageInfo: w.info(), Users: w.Users}, &w.wireHeader, nil
}

// Users streams the library's users (GET /users), page by page as they
// arrive; see paginate for the rules.
func (c *Client) Users(ctx context.Context, tok *Token, q UsersQuery) iter.Seq2[*UsersPage, error] {
	query := q.values().Encode()
	return paginate(ctx, q.StartPage, q.Parallel, func(ctx context.Context, index int) (*UsersPage, error) {
		var p *UsersPage
		err := c.getJSON(ctx, tok, "/users", withPage(query, index), func(b []byte) (*wireHeader, error) {
			v, hdr, err := decodeUsersPage(b)
			p = v
			return hdr, err
		})
		if err != nil {
			return nil, err
		}
		return p, nil
	})
}

type manageUsersRequest struct {
	Users []RequestUser `json:"users"`
}

// CreateUsers registers users (POST /users/create, doc/apple-api.md §6.3); at most
// Limits.MaxUsers per request (see SplitUsers). A user created with a
// ManagedAppleID is associated at once; others need the invitation. Results
// are asynchronous: poll EventStatus or wait for USER_MANAGEMENT.
func (c *Client) CreateUsers(ctx context.Context, tok *Token, users []RequestUser) (*EventResponse, error) {
	return c.postEvent(ctx, tok, "/users/create", manageUsersRequest{Users: users})
}

// UpdateUsers changes users' email or managed Apple Account (POST /users/update).
func (c *Client) UpdateUsers(ctx context.Context, tok *Token, users []RequestUser) (*EventResponse, error) {
	return c.postEvent(ctx, tok, "/users/update", manageUsersRequest{Users: users})
}

// RetireUsers retires users (POST /users/retire); only ClientUserID is sent.
// Retiring releases the users' revocable licenses (doc/apple-api.md §15).
func (c *Client) RetireUsers(ctx context.Context, tok *Token, users []RequestUser) (*EventResponse, error) {
	ids := make([]RequestUser, len(users))
	for i, u := range users {
		ids[i] = RequestUser{ClientUserID: u.ClientUserID}
	}
	return c.postEvent(ctx, tok, "/users/retire", manageUsersRequest{Users: ids})
}

// InvitationURL returns the invitation link for a Registered user: the
// service configuration's invitationEmail URL with the inviteCode filled in
// (doc/apple-api.md §6.1). It returns "" when the configuration has no such URL.
func (sc *ServiceConfig) InvitationURL(inviteCode string) string {
	tmpl := sc.URLs["invitationEmail"]
	if tmpl == "" || inviteCode == "" {
		return ""
	}
	code := url.QueryEscape(inviteCode)
	for _, ph := range []string{"%25inviteCode%25", "%inviteCode%"} {
		if i := strings.Index(tmpl, ph); i >= 0 {
			return tmpl[:i] + code + tmpl[i+len(ph):]
		}
	}
	return ""
}
