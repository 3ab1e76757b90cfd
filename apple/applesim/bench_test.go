package applesim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// benchServer serves one generated token with 100,000 assignments.
func benchServer(b *testing.B) (*httptest.Server, string, *Sim) {
	b.Helper()
	sim := New(Options{})
	g := sim.Generate(GenSpec{Tokens: 1, AppsPerToken: 2000, AssignmentsPerToken: 100_000, Seed: 1})
	srv := httptest.NewServer(sim)
	b.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	return srv, g.TokenFiles[0], sim
}

func fetchPage(b *testing.B, client *http.Client, url, token string, decode bool) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err) // not Fatal: this runs on the fetching goroutines
		return 0
	}
	defer resp.Body.Close()
	if !decode {
		n, _ := io.Copy(io.Discard, resp.Body)
		return int(n)
	}
	var page struct {
		Assignments []struct {
			AdamID       string `json:"adamId"`
			PricingParam string `json:"pricingParam"`
			SerialNumber string `json:"serialNumber"`
			ClientUserID string `json:"clientUserId"`
		} `json:"assignments"`
		TotalPages int `json:"totalPages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		b.Error(err)
		return 0
	}
	return len(page.Assignments)
}

// BenchmarkServeAssignmentPages fetches all 100 pages of 100,000 assignments over HTTP,
// sequentially and with 5 pages in flight (Apple's allowance), without decoding (the cost
// of the simulator and the transport) and with encoding/json decoding.
func BenchmarkServeAssignmentPages(b *testing.B) {
	srv, token, _ := benchServer(b)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 8
	for _, bc := range []struct {
		name     string
		parallel int
		decode   bool
	}{{"sequential/raw", 1, false}, {"parallel5/raw", 5, false}, {"sequential/decode", 1, true}, {"parallel5/decode", 5, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var bytes int64
			for b.Loop() {
				pages := make(chan int, 100)
				for p := range 100 {
					pages <- p
				}
				close(pages)
				var wg sync.WaitGroup
				var mu sync.Mutex
				for range bc.parallel {
					wg.Go(func() {
						for p := range pages {
							n := fetchPage(b, client, fmt.Sprintf("%s/mdm/v2/assignments?pageIndex=%d", srv.URL, p), token, bc.decode)
							mu.Lock()
							bytes += int64(n)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "assignments/s")
			if !bc.decode {
				b.SetBytes(bytes / int64(b.N))
			}
		})
	}
}

// BenchmarkEncodeAssignmentPage measures the simulator's own cost of one 1000-record page,
// without HTTP.
func BenchmarkEncodeAssignmentPage(b *testing.B) {
	_, token, sim := benchServer(b)
	req := httptest.NewRequest(http.MethodGet, "/mdm/v2/assignments?pageIndex=42", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := &discardWriter{h: http.Header{}}
	for b.Loop() {
		sim.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "assignments/s")
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
