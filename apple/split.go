package apple

import "slices"

// SplitManage splits an associate/disassociate request into requests within
// the limits l (MaxAssets, MaxClientUserIDs, MaxSerialNumbers; missing limits
// take their defaults), with duplicates removed (Apple rejects duplicates:
// 9703-9705). An asset's empty pricing param is written out as STDQ, so ""
// and "STDQ" count as the same asset.
//
// The requests together cover every asset × target pair of req exactly once:
// each chunk of assets is sent with each chunk of user ids, and each chunk of
// serial numbers, pairing a user chunk with a serial chunk in one request when
// both exist. Empty strings are dropped. A request without assets or without
// targets yields no requests (there is nothing to do).
func SplitManage(req ManageAssetsRequest, l Limits) []ManageAssetsRequest {
	l = l.withDefaults()
	assets := uniqueAssets(req.Assets)
	users := uniqueStrings(req.ClientUserIDs)
	serials := uniqueStrings(req.SerialNumbers)
	if len(assets) == 0 || len(users)+len(serials) == 0 {
		return nil
	}
	assetChunks := slices.Collect(slices.Chunk(assets, l.MaxAssets))
	userChunks := slices.Collect(slices.Chunk(users, l.MaxClientUserIDs))
	serialChunks := slices.Collect(slices.Chunk(serials, l.MaxSerialNumbers))
	n := max(len(userChunks), len(serialChunks))
	out := make([]ManageAssetsRequest, 0, len(assetChunks)*n)
	for _, a := range assetChunks {
		for i := range n {
			r := ManageAssetsRequest{Assets: a}
			if i < len(userChunks) {
				r.ClientUserIDs = userChunks[i]
			}
			if i < len(serialChunks) {
				r.SerialNumbers = serialChunks[i]
			}
			out = append(out, r)
		}
	}
	return out
}

// SplitRevoke splits a revoke request within MaxRevokeClientUserIDs and
// MaxRevokeSerialNumbers, duplicates removed; user and serial chunks are
// paired as in SplitManage. A request without targets yields no requests.
func SplitRevoke(req RevokeAssetsRequest, l Limits) []RevokeAssetsRequest {
	l = l.withDefaults()
	users := slices.Collect(slices.Chunk(uniqueStrings(req.ClientUserIDs), l.MaxRevokeClientUserIDs))
	serials := slices.Collect(slices.Chunk(uniqueStrings(req.SerialNumbers), l.MaxRevokeSerialNumbers))
	n := max(len(users), len(serials))
	out := make([]RevokeAssetsRequest, 0, n)
	for i := range n {
		var r RevokeAssetsRequest
		if i < len(users) {
			r.ClientUserIDs = users[i]
		}
		if i < len(serials) {
			r.SerialNumbers = serials[i]
		}
		out = append(out, r)
	}
	return out
}

// SplitUsers splits users for create/update/retire into batches of at most
// MaxUsers, one entry per clientUserId (Apple rejects duplicates: 9715). When
// a clientUserId repeats, the last entry wins (the most recent intent), at the
// position of the first. Users without a clientUserId are dropped.
func SplitUsers(users []RequestUser, l Limits) [][]RequestUser {
	l = l.withDefaults()
	pos := make(map[string]int, len(users))
	var uniq []RequestUser
	for _, u := range users {
		if u.ClientUserID == "" {
			continue
		}
		if i, ok := pos[u.ClientUserID]; ok {
			uniq[i] = u
			continue
		}
		pos[u.ClientUserID] = len(uniq)
		uniq = append(uniq, u)
	}
	return slices.Collect(slices.Chunk(uniq, l.MaxUsers))
}

func uniqueStrings(in []string) []string {
	seen := make(map[string]struct{}, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s == "" {
			continue
		}
		if _, dup := seen[s]; dup {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	return out
}

func uniqueAssets(in []AssetRef) []AssetRef {
	seen := make(map[AssetRef]struct{}, len(in))
	out := make([]AssetRef, 0, len(in))
	for _, a := range in {
		if a.AdamID == "" {
			continue
		}
		a = a.normalized()
		if _, dup := seen[a]; dup {
			continue
		}
		seen[a] = struct{}{}
		out = append(out, a)
	}
	return out
}
