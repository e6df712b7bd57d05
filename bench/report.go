package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Result is what one run measured. Rates are per second of publishing.
type Result struct {
	Publishers  int  `json:"publishers"`
	Subscribers int  `json:"subscribers"`
	Channels    int  `json:"channels"`
	Patterns    bool `json:"patterns"`
	PayloadSize int  `json:"payload_bytes"`
	Pipeline    int  `json:"pipeline"`
	Rate        int  `json:"target_rate"` // 0: closed loop

	Seconds       float64 `json:"seconds"`
	Published     uint64  `json:"published"` // acknowledged
	PublishErrors uint64  `json:"publish_errors"`
	PublishRate   float64 `json:"publish_rate"`
	Expected      uint64  `json:"expected"`  // deliveries the acknowledged publishes owe
	Delivered     uint64  `json:"delivered"` // distinct deliveries received
	DeliveryRate  float64 `json:"delivery_rate"`
	Lost          uint64  `json:"lost"`
	Duplicated    uint64  `json:"duplicated"`
	OutOfOrder    uint64  `json:"out_of_order"`
	Foreign       uint64  `json:"foreign"` // messages that were not the benchmark's
	Latency       Latency `json:"latency_us"`
	// Errors lists connections that broke during the run.
	Errors string `json:"errors,omitempty"`
}

// Latency percentiles, in microseconds, from intended send to receipt.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func summarize(o *Options, pubs []*publisher, subs []*subscriber, published time.Duration, expected []uint64) *Result {
	r := &Result{Publishers: len(pubs), Subscribers: len(subs), Channels: o.Channels, Patterns: o.Patterns,
		PayloadSize: o.PayloadSize, Pipeline: o.Pipeline, Rate: o.Rate, Seconds: published.Seconds()}
	for _, p := range pubs {
		r.Published += p.total.Load()
		r.PublishErrors += p.errors.Load()
	}
	latency := newLatencyHistogram()
	for j, s := range subs {
		r.Expected += expected[j]
		r.Foreign += s.foreign
		for _, ch := range s.channels {
			for _, p := range pubs {
				if p.tenant != s.tenant {
					continue
				}
				st := s.streams[keyOf(p.id, uint32(ch))]
				if st == nil {
					st = &stream{}
				}
				r.Lost += st.lost(p.acked[ch])
			}
		}
		for _, st := range s.streams {
			r.Delivered += st.unique
			r.Duplicated += st.duplicates
			r.OutOfOrder += st.outOfOrder
		}
		if s.latency != nil {
			latency.Merge(s.latency)
		}
	}
	r.PublishRate = float64(r.Published) / r.Seconds
	r.DeliveryRate = float64(r.Delivered) / r.Seconds
	r.Latency = Latency{
		P50: float64(latency.ValueAtQuantile(50)), P99: float64(latency.ValueAtQuantile(99)),
		P999: float64(latency.ValueAtQuantile(99.9)), Max: float64(latency.Max()),
	}
	if err := connectionErrors(pubs, subs); err != nil {
		r.Errors = err.Error()
	}
	return r
}

// WriteTable prints r for people.
func (r *Result) WriteTable(w io.Writer) {
	mode := "closed loop"
	if r.Rate > 0 {
		mode = fmt.Sprintf("%s msg/s total", humanize.Comma(int64(r.Rate)))
	}
	kind := "channels"
	if r.Patterns {
		kind = "patterns"
	}
	fmt.Fprintf(w, "%d publishers (pipeline %d, %s), %d subscribers, %d %s, %d-byte payloads, %.1fs\n",
		r.Publishers, r.Pipeline, mode, r.Subscribers, r.Channels, kind, r.PayloadSize, r.Seconds)
	row := func(name, value string) { fmt.Fprintf(w, "  %-14s %s\n", name, value) }
	row("published", fmt.Sprintf("%s (%s/s), %s refused", humanize.Comma(int64(r.Published)), humanize.Comma(int64(r.PublishRate)), humanize.Comma(int64(r.PublishErrors))))
	row("delivered", fmt.Sprintf("%s (%s/s) of %s expected", humanize.Comma(int64(r.Delivered)), humanize.Comma(int64(r.DeliveryRate)), humanize.Comma(int64(r.Expected))))
	row("checks", fmt.Sprintf("%d lost, %d duplicated, %d out of order", r.Lost, r.Duplicated, r.OutOfOrder))
	if r.Delivered > 0 {
		l := r.Latency
		row("latency", fmt.Sprintf("p50 %s  p99 %s  p99.9 %s  max %s", us(l.P50), us(l.P99), us(l.P999), us(l.Max)))
	}
	if r.Foreign > 0 {
		row("foreign", fmt.Sprintf("%d messages without the benchmark's header", r.Foreign))
	}
	if r.Errors != "" {
		row("errors", strings.ReplaceAll(r.Errors, "\n", "\n                 "))
	}
}

// us renders microseconds readably.
func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.0fµs", v)
}

// progress prints a line a second while the run lasts.
type progress struct {
	done, stopped chan struct{}
}

func startProgress(o *Options, pubs []*publisher, subs []*subscriber, start time.Time) *progress {
	p := &progress{done: make(chan struct{}), stopped: make(chan struct{})}
	if o.Progress == nil {
		close(p.stopped)
		return p
	}
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastPub, lastSub uint64
		for {
			select {
			case <-p.done:
				return
			case now := <-tick.C:
				var pub, sub, refused uint64
				for _, x := range pubs {
					pub += x.total.Load()
					refused += x.errors.Load()
				}
				for _, x := range subs {
					sub += x.unique.Load()
				}
				fmt.Fprintf(o.Progress, "%4.0fs  published %10s/s  delivered %10s/s  refused %s\n", now.Sub(start).Seconds(),
					humanize.Comma(int64(pub-lastPub)), humanize.Comma(int64(sub-lastSub)), humanize.Comma(int64(refused)))
				lastPub, lastSub = pub, sub
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.stopped
}
