package main

import (
	"testing"

	"github.com/fanwire/fanwire/server"
)

func TestServeCompressionFlags(t *testing.T) {
	cases := []struct {
		args []string
		want server.CompressionConfig
	}{
		{nil, server.DefaultCompression()},
		{[]string{"--compression=false"}, server.CompressionConfig{Enabled: false, MinSize: 256, Level: 1}},
		{[]string{"--compress-min", "1KiB", "--compress-level", "6"}, server.CompressionConfig{Enabled: true, MinSize: 1024, Level: 6}},
	}
	for _, c := range cases {
		opts, err := parseServeFlags(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if opts.cfg.Compression != c.want {
			t.Errorf("%q: %+v, want %+v", c.args, opts.cfg.Compression, c.want)
		}
	}
	for _, level := range []string{"10", "-1"} {
		opts, err := parseServeFlags([]string{"--compress-level", level})
		if err != nil {
			t.Fatal(err)
		}
		opts.cfg.Listen = "127.0.0.1:0"
		if _, err := server.NewNode(opts.cfg); err == nil {
			t.Errorf("--compress-level %s: NewNode accepted it", level)
		}
	}
}
