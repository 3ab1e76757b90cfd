package loaders

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/graph-gophers/dataloader/v7"
)

// Prefill serves the keys not primed yet with the loader's batch function, maxPrefill keys a
// call, primes what it finds — and nothing of a failed key, so the resolver loads (and
// reports) it on its own — and answers every key it was given.
func TestPrefill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls [][]int
	l := newLoader(func(_ context.Context, keys []int) []*dataloader.Result[string] {
		calls = append(calls, append([]int(nil), keys...))
		out := make([]*dataloader.Result[string], len(keys))
		for i, k := range keys {
			if k == 13 {
				out[i] = &dataloader.Result[string]{Error: errors.New("unlucky")}
				continue
			}
			out[i] = &dataloader.Result[string]{Data: "v" + string(rune('0'+k%10))}
		}
		return out
	})
	l.Prime(ctx, 1, "primed")
	keys := make([]int, 0, maxPrefill+20)
	for k := range maxPrefill + 20 {
		keys = append(keys, k, k) // duplicates are asked for once
	}
	got := Prefill(ctx, l, keys)
	if len(calls) != 2 || len(calls[0]) != maxPrefill || len(calls[1]) != 20-1 {
		t.Fatalf("batch calls of %v keys, want %d then %d (key 1 was primed)", lens(calls), maxPrefill, 19)
	}
	if diff := cmp.Diff("primed", got[1]); diff != "" {
		t.Errorf("primed key mismatch (-want +got):\n%s", diff)
	}
	if _, ok := got[13]; ok || l.Cached(13) {
		t.Errorf("a failed key was answered or primed: %q", got[13])
	}
	if len(got) != maxPrefill+20-1 || !l.Cached(maxPrefill+19) {
		t.Errorf("answered %d keys, want %d, all primed", len(got), maxPrefill+19)
	}
	calls = nil
	Prefill(ctx, l, []int{2, 3, 13})
	if diff := cmp.Diff([][]int{{13}}, calls); diff != "" {
		t.Errorf("second prefill: only the failed key is asked again; mismatch (-want +got):\n%s", diff)
	}
}

func lens(calls [][]int) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = len(c)
	}
	return out
}

// LoadMany answers primed keys from the cache and the others in one batch, in key order; a
// failed key is not cached.
func TestLoadMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls [][]int
	l := newLoader(func(_ context.Context, keys []int) []*dataloader.Result[string] {
		calls = append(calls, append([]int(nil), keys...))
		out := make([]*dataloader.Result[string], len(keys))
		for i, k := range keys {
			if k == 13 {
				out[i] = &dataloader.Result[string]{Error: errors.New("unlucky")}
				continue
			}
			out[i] = &dataloader.Result[string]{Data: "v" + string(rune('0'+k%10))}
		}
		return out
	})
	l.Prime(ctx, 2, "primed")
	got, err := LoadMany(ctx, l, []int{5, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || len(calls[0]) != 3 {
		t.Errorf("batch calls %v; want one call of the three keys not primed", calls)
	}
	if diff := cmp.Diff([]string{"v5", "primed", "v3", "v4"}, got); diff != "" {
		t.Errorf("values mismatch (-want +got):\n%s", diff)
	}
	calls = nil
	if _, err := LoadMany(ctx, l, []int{13, 3}); err == nil {
		t.Error("a failed key answered no error")
	}
	if _, err := LoadMany(ctx, l, []int{13}); err == nil || len(calls) != 2 {
		t.Errorf("the failed key was cached (calls %v, error %v); want it asked again", calls, err)
	}
}

// A loader makes its dataloader for the first key that is not primed, and only then: a
// request whose relations the prefetch primed builds none (see Loader). Loads through the
// dataloader still batch and cache as before.
func TestDataloaderMadeWhenNeeded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls [][]int
	l := newLoader(func(_ context.Context, keys []int) []*dataloader.Result[string] {
		calls = append(calls, append([]int(nil), keys...))
		out := make([]*dataloader.Result[string], len(keys))
		for i, k := range keys {
			out[i] = &dataloader.Result[string]{Data: "v" + string(rune('0'+k%10))}
		}
		return out
	})
	l.Prime(ctx, 1, "primed")
	Prefill(ctx, l, []int{1, 2})
	if got, err := Load(ctx, l, 2); err != nil || got != "v2" {
		t.Fatalf("Load(2) = %q, %v; want the prefilled v2", got, err)
	}
	if l.loader != nil {
		t.Fatal("a loader made its dataloader though every key it was asked for was primed")
	}
	if got, err := Load(ctx, l, 3); err != nil || got != "v3" || l.loader == nil {
		t.Fatalf("Load(3) = %q, %v (dataloader made: %v); want v3 through the dataloader", got, err, l.loader != nil)
	}
	if _, err := Load(ctx, l, 3); err != nil || len(calls) != 2 {
		t.Errorf("batch calls %v; want the prefill's and one for key 3, then key 3 from the dataloader's cache", calls)
	}
}
