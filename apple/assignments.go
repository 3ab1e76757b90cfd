package apple

import (
	"context"
	"iter"
	"net/url"
	"strconv"
)

// AssignmentsQuery filters GET /assignments (doc/apple-api.md §5.3). Zero values leave a filter
// out.
type AssignmentsQuery struct {
	AdamID       string
	ClientUserID string
	SerialNumber string
	PricingParam string
	// SinceVersionID asks only for the records changed since that version (the
	// VersionID of a previous listing's pages). An unknown version fails with
	// ErrBadVersion: do a full listing instead. Removals are not reported by
	// default (doc/apple-api.md §15): find them with periodic full listings.
	SinceVersionID string
	// ExcludeInactiveUsers drops the assignments of retired/inactive users.
	ExcludeInactiveUsers bool
	// IncludeUserState adds UserStatus and IDHash.
	IncludeUserState bool
	// StartPage resumes a listing at this page index (default 0).
	StartPage int
	// Parallel > 1 prefetches up to that many pages concurrently (max 5).
	Parallel int
}

func (q AssignmentsQuery) values() url.Values {
	v := url.Values{}
	setString(v, "adamId", q.AdamID)
	setString(v, "clientUserId", q.ClientUserID)
	setString(v, "serialNumber", q.SerialNumber)
	setString(v, "pricingParam", q.PricingParam)
	setString(v, "sinceVersionId", q.SinceVersionID)
	if q.ExcludeInactiveUsers {
		v.Set("excludeInactiveUsers", strconv.FormatBool(true))
	}
	if q.IncludeUserState {
		v.Set("includeUserState", strconv.FormatBool(true))
	}
	return v
}

// AssignmentsPage is one page of GET /assignments.
type AssignmentsPage struct {
	Envelope
	PageInfo
	Assignments []Assignment `json:"assignments"`
}

func (p *AssignmentsPage) pageInfo() *PageInfo { return &p.PageInfo }

// Assignments streams the library's assignments (GET /assignments), page by
// page as they arrive; see paginate for the rules. Pass the pages' VersionID as
// SinceVersionID of the next incremental listing.
func (c *Client) Assignments(ctx context.Context, tok *Token, q AssignmentsQuery) iter.Seq2[*AssignmentsPage, error] {
	query := q.values().Encode()
	return paginate(ctx, q.StartPage, q.Parallel, func(ctx context.Context, index int) (*AssignmentsPage, error) {
		var p *AssignmentsPage
		err := c.getJSON(ctx, tok, "/assignments", withPage(query, index), func(b []byte) (*wireHeader, error) {
			v, hdr, err := decodeAssignmentsPage(b)
			p = v
			return hdr, err
		})
		if err != nil {
			return nil, err
		}
		return p, nil
	})
}
