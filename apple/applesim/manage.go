package applesim

import "slices"

// Associate, disassociate and revoke (doc/apple-api.md §5.4, §5.5). The synchronous validation
// follows Apple's order — body presence (9718, 9719), limits (9700–9702), duplicates
// (9703–9705), asset properties (9707, then 9706) — and any failure means no event is
// created. Everything else happens asynchronously, per task, when the event is processed.

func (c *call) associate()    { c.manageAssets(eventAssociate) }
func (c *call) disassociate() { c.manageAssets(eventDisassociate) }

// uniqueStrings returns the distinct values in order and those seen more than once.
func uniqueStrings(list []string) (uniq, dups []string) {
	seen := make(map[string]int, len(list))
	for _, v := range list {
		seen[v]++
		switch seen[v] {
		case 1:
			uniq = append(uniq, v)
		case 2:
			dups = append(dups, v)
		}
	}
	return uniq, dups
}

func validPricing(p string) bool { return p == "STDQ" || p == "PLUS" }

func (c *call) manageAssets(typ string) {
	var req wireManageAssetsRequest
	present, ok := c.decodeBody(&req)
	if !ok {
		return
	}
	if !present || len(req.Assets) == 0 {
		writeError(c.w, errNoAssets, nil)
		return
	}
	if len(req.ClientUserIDs) == 0 && len(req.SerialNumbers) == 0 {
		writeError(c.w, errNoTargets, nil)
		return
	}
	keys := make([]assetKey, len(req.Assets))
	for i, a := range req.Assets {
		if a.PricingParam == "" {
			a.PricingParam = "STDQ" // doc/apple-api.md §15
		}
		if a.AdamID == "" || !validPricing(a.PricingParam) {
			writeError(c.w, errInvalidArgument, nil)
			return
		}
		keys[i] = assetKey{a.AdamID, a.PricingParam}
	}
	if slices.Contains(req.ClientUserIDs, "") || slices.Contains(req.SerialNumbers, "") {
		writeError(c.w, errInvalidArgument, nil)
		return
	}

	// Limits count distinct values; duplicates are reported after them.
	seen := map[assetKey]int{}
	var uniqKeys []assetKey
	var dupAssets []wireAsset
	for _, k := range keys {
		seen[k]++
		switch seen[k] {
		case 1:
			uniqKeys = append(uniqKeys, k)
		case 2:
			dupAssets = append(dupAssets, wireAsset{k.adamID, k.pricing})
		}
	}
	users, dupUsers := uniqueStrings(req.ClientUserIDs)
	serials, dupSerials := uniqueStrings(req.SerialNumbers)
	lim := c.s.Limits()
	switch {
	case len(uniqKeys) > lim.MaxAssets:
		writeError(c.w, errTooManyAssets, nil)
		return
	case len(users) > lim.MaxClientUserIDs:
		writeError(c.w, errTooManyClientUserIDs, nil)
		return
	case len(serials) > lim.MaxSerialNumbers:
		writeError(c.w, errTooManySerialNumbers, nil)
		return
	case len(dupAssets) > 0:
		writeError(c.w, errDuplicateAssets, &wireErrorInfo{Assets: dupAssets})
		return
	case len(dupUsers) > 0:
		writeError(c.w, errDuplicateClientUserIDs, &wireErrorInfo{ClientUserIDs: dupUsers})
		return
	case len(dupSerials) > 0:
		writeError(c.w, errDuplicateSerialNumbers, &wireErrorInfo{SerialNumbers: dupSerials})
		return
	}

	// Asset properties of owned assets. Unknown assets pass here and fail per task (9709 on
	// associate: the OU owns no license of them).
	var notDevice, notRevocable []wireAsset
	t := c.t
	t.mu.RLock()
	for _, k := range keys {
		a := t.assets.byKey[k]
		if a == nil {
			continue
		}
		if len(serials) > 0 && !a.meta.DeviceAssignable {
			notDevice = append(notDevice, wireAsset{k.adamID, k.pricing})
		}
		if typ == eventDisassociate && !a.meta.Revocable {
			notRevocable = append(notRevocable, wireAsset{k.adamID, k.pricing})
		}
	}
	t.mu.RUnlock()
	switch {
	case len(notDevice) > 0:
		writeError(c.w, errNotDeviceAssignable, &wireErrorInfo{Assets: notDevice})
		return
	case len(notRevocable) > 0:
		writeError(c.w, errNotRevocable, &wireErrorInfo{Assets: notRevocable})
		return
	}
	c.accept(&event{typ: typ, assets: keys, users: users, serials: serials, numRequested: len(keys) * (len(users) + len(serials))})
}

// processAssets runs the tasks of an associate or disassociate: every asset × every target,
// assets in request order, for each asset the users and then the devices. Associate:
// a user must be registered (else 9609); an existing pair is an idempotent success (or 9616
// with Options.ReassociateFails9616); otherwise it takes one license (9709 when none is left;
// unlimited assets never run out). Disassociate: an existing pair is removed and its license
// freed; a missing one is an idempotent success (or 9619 with
// Options.DisassociateMissingFails9619).
func (t *token) processAssets(s *Sim, ev *event, v uint64) {
	changed := false
	for _, k := range ev.assets {
		a := t.assets.byKey[k]
		task := func(serial, user string) {
			ak := assignKey{k.adamID, k.pricing, serial, user}
			existing := t.assigns.byKey[ak]
			if ev.typ == eventDisassociate {
				switch {
				case existing != nil:
					t.assigns.remove(existing, v)
					if a != nil {
						a.assigned--
					}
					changed = true
					ev.succeedTask(k, serial, user)
				case s.opts.DisassociateMissingFails9619:
					ev.failTask(errNotAssociated, k, serial, user)
				default:
					ev.succeedTask(k, serial, user)
				}
				return
			}
			switch {
			case user != "" && t.users.active[user] == nil:
				ev.failTask(errUserNotFound, k, serial, user)
			case existing != nil && s.opts.ReassociateFails9616:
				ev.failTask(errAlreadyAssigned, k, serial, user)
			case existing != nil:
				ev.succeedTask(k, serial, user)
			case a == nil || !a.canAssign():
				ev.failTask(errNotEnoughLicenses, k, serial, user)
			default:
				t.assigns.add(ak, v)
				a.assigned++
				changed = true
				ev.succeedTask(k, serial, user)
			}
		}
		for _, u := range ev.users {
			task("", u)
		}
		for _, sn := range ev.serials {
			task(sn, "")
		}
	}
	if changed {
		t.assets.version = v
	}
}

// revoke serves POST /assets/revoke: all revocable assets of the listed users and devices are
// disassociated (books stay). Limits are maxRevokeClientUserIds / maxRevokeSerialNumbers.
func (c *call) revoke() {
	var req wireRevokeRequest
	present, ok := c.decodeBody(&req)
	if !ok {
		return
	}
	if !present || (len(req.ClientUserIDs) == 0 && len(req.SerialNumbers) == 0) {
		writeError(c.w, errNoTargets, nil)
		return
	}
	if slices.Contains(req.ClientUserIDs, "") || slices.Contains(req.SerialNumbers, "") {
		writeError(c.w, errInvalidArgument, nil)
		return
	}
	users, dupUsers := uniqueStrings(req.ClientUserIDs)
	serials, dupSerials := uniqueStrings(req.SerialNumbers)
	lim := c.s.Limits()
	switch {
	case len(users) > lim.MaxRevokeClientUserIDs:
		writeError(c.w, errTooManyClientUserIDs, nil)
		return
	case len(serials) > lim.MaxRevokeSerialNumbers:
		writeError(c.w, errTooManySerialNumbers, nil)
		return
	case len(dupUsers) > 0:
		writeError(c.w, errDuplicateClientUserIDs, &wireErrorInfo{ClientUserIDs: dupUsers})
		return
	case len(dupSerials) > 0:
		writeError(c.w, errDuplicateSerialNumbers, &wireErrorInfo{SerialNumbers: dupSerials})
		return
	}
	c.accept(&event{typ: eventRevoke, users: users, serials: serials, numRequested: len(users) + len(serials)})
}

// processRevoke removes the revocable assignments of each target. A task is one target; a
// target without assignments completes with nothing to do.
func (t *token) processRevoke(ev *event, v uint64) {
	changed := false
	revokeAll := func(list []*assignRec) {
		for _, r := range slices.SortedFunc(slices.Values(list), cmpAssign) {
			a := t.assets.byKey[assetKey{r.adamID, r.pricing}]
			if a == nil || !a.meta.Revocable {
				continue
			}
			t.assigns.remove(r, v)
			a.assigned--
			changed = true
			ev.okAssignments = append(ev.okAssignments, wireNotificationAssignment{AdamID: r.adamID, PricingParam: r.pricing, SerialNumber: r.serial, ClientUserID: r.user})
		}
		ev.numCompleted++
	}
	for _, u := range ev.users {
		revokeAll(t.assigns.byUser[u])
	}
	for _, sn := range ev.serials {
		revokeAll(t.assigns.bySerial[sn])
	}
	if changed {
		t.assets.version = v
	}
}
