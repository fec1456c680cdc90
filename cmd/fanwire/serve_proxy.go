package main

import (
	"flag"

	"github.com/fanwire/fanwire/server"
)

// proxyFlags: the node behind a TLS terminator or load balancer (README
// "Deploying behind TLS").
func proxyFlags(fs *flag.FlagSet, p *server.ProxyConfig) {
	fs.BoolVar(&p.Protocol, "proxy-protocol", false,
		"every connection starts with a PROXY protocol v1/v2 header from the proxy in front (HAProxy send-proxy-v2, nginx proxy_protocol): "+
			"its client address is used for logs and limits; connections without one get 400. Only when nobody else can reach --listen")
}
