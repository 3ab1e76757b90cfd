package scheduler

import (
	"context"
	"fmt"
	"time"
)

// SyncNow runs one pass of an account at once, under the account's sync lease (taken, renewed
// while the pass runs, and given back), as the scheduler does when the account is due or has
// a queued pass (queue one with license.Service.QueueSync to choose its kind). For tests and
// benchmarks that drive passes by hand (gqltest.StackOptions.NoScheduler).
func (s *Scheduler) SyncNow(ctx context.Context, accountID int64) error {
	key := leaseName("sync", accountID)
	ok, err := s.db.AcquireLease(ctx, key, s.cfg.Holder, s.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("lease %s is held by another replica", key)
	}
	defer s.db.ReleaseLease(context.WithoutCancel(ctx), key, s.cfg.Holder)
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = s.db.AcquireLease(ctx, key, s.cfg.Holder, s.cfg.LeaseTTL)
			}
		}
	}()
	return s.syncAccount(ctx, accountID)
}
