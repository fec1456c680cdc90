package main

import (
	"flag"
	"log/slog"
	"net"
	"net/netip"

	"github.com/fanwire/fanwire/server"
)

// proxyFlags: the node behind a TLS terminator or load balancer (README
// "Deploying behind TLS").
func proxyFlags(fs *flag.FlagSet, p *server.ProxyConfig) {
	fs.BoolVar(&p.Protocol, "proxy-protocol", false,
		"every connection starts with a PROXY protocol v1/v2 header from the proxy in front (HAProxy send-proxy-v2, nginx proxy_protocol): "+
			"its client address is used for logs and limits; connections without one get 400. Only when nobody else can reach --listen")
}

// warnProxyExposure says loudly when --proxy-protocol listens where more
// than the proxy may reach it: whoever connects can then name any client
// address, and per-IP limits and logs believe it.
func warnProxyExposure(log *slog.Logger, cfg server.Config) {
	if !cfg.Proxy.Protocol {
		return
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsLoopback() || ip.IsPrivate()) {
		return
	}
	log.Warn("--proxy-protocol on a listener others may reach: any client can claim any address in its PROXY header; "+
		"bind --listen to loopback or a private interface that only the proxy reaches, or firewall it", "listen", cfg.Listen)
}
