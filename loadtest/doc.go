// Package loadtest is fanwire's load generator (`fanwire load`): it opens
// many WebSocket client connections to a node, checks what they receive and
// reports it (text and JSON), in three modes:
//
//   - connect: N connections ramped at a rate, held, closed cleanly.
//   - fanout: S subscribers over T topics (subscriber i on topic i%T, by URL),
//     publishers POST {"t":<send unix ns>,"pad":"..."} to /publish/{topic};
//     every delivery's latency goes into an HDR histogram, seq contiguity is
//     checked per connection, loss = expected - delivered, where expected is
//     the sum of "subscribers" in the publish responses (cross-checked with
//     the plan). Latency runs from just before the publish POST is sent to the
//     frame's arrival, so it includes the HTTP request to the control API.
//   - churn: N connections, of which --churn-rate per second are closed and
//     redialed.
//   - chat (chat.go): U users in R rooms plus a hot room, one connection per
//     user, subscribed to its room by URL and publishing to it in-band
//     ({"op":"publish"}) once per --publish-interval at a random phase. The
//     acks give each room's highest acknowledged seq; each user checks its
//     deliveries (in order from seq 1, duplicates, late arrivals), and at
//     the end must hold every acknowledged seq of its room: the rest is lost.
//     With --server-pid, server CPU (pid and descendants, servercpu.go) per
//     delivery. Workers get "publish <start> <end>" on stdin to start.
//
// How it is built (see GNET-NOTES.md for the server side of the same ideas):
//
//   - Fleet: one process's connections, driven by a few epoll loops (loop.go,
//     poller.go), one goroutine each, edge-triggered, non-blocking sockets
//     (dial.go). A connection is one small struct stored by value in its
//     loop's slot slice (conn.go): no goroutine, timer or buffer per
//     connection. Reads go to one buffer per loop; only a partial frame is
//     kept, in a pooled buffer (bufpool.go). Deadlines are a periodic sweep.
//   - The protocol side (client.go) uses the codec's client helpers: upgrade
//     request, accept check, client-mode Parser, masked pongs and the close
//     handshake (ours sent, the server's awaited up to --close-timeout).
//   - Sockets bind to rotating source addresses 127.0.0.2... (sources.go)
//     with IP_BIND_ADDRESS_NO_PORT, so loopback runs are not capped by one
//     source IP's ephemeral ports.
//   - When N exceeds what the open-files limit allows one process, the run is
//     split into Plans (plan.go) and the binary re-executes itself as worker
//     processes (workers.go): the Plan goes in on stdin, progress ("P") and
//     the result ("R", with HDR histograms) come back on stdout, results are
//     merged (report.go). RunWorkerIfChild must be called first in main and
//     TestMain. --workers N forces N processes; on several machines, run one
//     `fanwire load` per machine against the same node.
//   - run.go drives the phases of a mode, progress.go prints the live status
//     line (terminal) or periodic lines, report.go judges the run (exit 1 on
//     failed or dropped connections, loss above --max-loss, duplicates or
//     publish errors).
package loadtest
