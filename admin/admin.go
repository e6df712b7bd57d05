// Package admin is pubgate's operator HTTP listener: Prometheus metrics
// read from the other packages' snapshots at scrape time, liveness and
// readiness probes, and optionally Go's profiler. Its endpoints are
// unauthenticated; the configuration keeps them on loopback unless told.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Options configure a Server.
type Options struct {
	Address string // host:port; port 0 picks a free one (see Addr)
	Pprof   bool   // serve net/http/pprof under /debug/pprof/
	Sources Sources
	Logger  *zap.Logger
}

// Server serves the admin endpoints.
type Server struct {
	o        Options
	log      *zap.Logger
	registry *prometheus.Registry
	http     *http.Server

	mu sync.Mutex
	ln net.Listener
}

// New builds the server and its metrics registry; Start serves it.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Server{o: o, log: o.Logger, registry: NewRegistry(o.Sources)}
	errLog, _ := zap.NewStdLogAt(s.log, zap.WarnLevel)
	s.http = &http.Server{
		Handler: s.Handler(),
		// A scrape or a probe is small; these bound a client that is not.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
	if o.Pprof {
		// /debug/pprof/profile runs for 30 s by default, and pprof refuses a
		// duration beyond the write timeout.
		s.http.WriteTimeout = 2 * time.Minute
	}
	return s
}

// NewRegistry is a registry holding pubgate's metrics (see Collector) and
// the Go runtime's and the process's.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(src),
	)
	return reg
}

// Registry is the server's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handler serves every admin endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:            zap.NewStdLog(s.log),
		MaxRequestsInFlight: 4, // scrapes are cheap, but need not pile up
		Timeout:             10 * time.Second,
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.registry, metrics))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Liveness: the process answers. Dependencies are /readyz's.
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.o.Sources.Ready(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ok")
	})
	index := "pubgate admin\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   readiness\n"
	if s.o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		index += "/debug/pprof/  Go profiler\n"
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprint(w, index)
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, line)
}

// Start listens on the address and serves in the background; it logs the
// address it got.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.o.Address)
	if err != nil {
		return fmt.Errorf("admin: listen: %w", err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.log.Info("admin listening", zap.Stringer("addr", ln.Addr()), zap.Bool("pprof", s.o.Pprof),
		zap.String("endpoints", "/metrics /healthz /readyz"))
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", zap.Error(err))
		}
	}()
	return nil
}

// Addr is the listening address, once started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting and waits for requests in flight until ctx is
// done. Safe to call more than once, and before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
