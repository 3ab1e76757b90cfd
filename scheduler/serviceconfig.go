package scheduler

import (
	"context"

	"orchard/license"
)

// rememberServiceConfig keeps what the API needs from Apple's service configuration (the
// invitation link template, for users who must link their Apple Account), since queries never
// ask Apple. The client caches the configuration for five minutes; the setting is written
// only when it changes.
func (s *Scheduler) rememberServiceConfig(ctx context.Context) {
	sc, err := s.api.ServiceConfig(ctx)
	if err != nil {
		return
	}
	t := sc.URLs["invitationEmail"]
	s.mu.Lock()
	same := t == "" || t == s.invitationURL
	s.mu.Unlock()
	if same {
		return
	}
	if err := s.db.SetSetting(ctx, license.SettingInvitationURL, t); err != nil {
		s.log.Warn("remember the invitation link", "error", err)
		return
	}
	s.mu.Lock()
	s.invitationURL = t
	s.mu.Unlock()
}
