package api

import (
	"log/slog"
	"net/http"
	"time"
)

// NewServer wraps a control handler in an http.Server with timeouts, so a
// slow or silent client cannot hold a connection (and its goroutine) forever.
// The caller binds the listener and calls Serve / Shutdown:
//
//	ln, err := net.Listen("tcp", addr)
//	srv := api.NewServer(api.NewHandler(node, opts), logger)
//	go srv.Serve(ln)   // returns http.ErrServerClosed after Shutdown
//	...
//	srv.Shutdown(ctx)
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // whole request incl. a max-size body
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
	}
}
