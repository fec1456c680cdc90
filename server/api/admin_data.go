package api

import (
	"time"

	"github.com/fanwire/fanwire/server/metrics"
)

// AdminData is GET /admin/data: totals the admin page turns into rates.
type AdminData struct {
	Mode          string            `json:"mode"` // "single" or "workers"
	Time          int64             `json:"time"` // unix ms
	Conns         int64             `json:"conns"`
	Open          int64             `json:"open"`
	Subscriptions int64             `json:"subscriptions"`
	Topics        int               `json:"topics"`
	Published     uint64            `json:"published"`
	Delivered     uint64            `json:"delivered"`
	Bytes         uint64            `json:"bytes"`
	SlowNow       int64             `json:"slow_now"`
	SlowMode      uint64            `json:"slow_mode"`
	Conflated     uint64            `json:"conflated"`
	SlowClosed    uint64            `json:"slow_closed"`
	Closed        map[string]uint64 `json:"closed"`
	Workers       []AdminWorker     `json:"workers"`
	TopTopics     []TopicInfo       `json:"top_topics"` // null: not available (worker mode)
}

// AdminWorker is one process's health row on the admin page.
type AdminWorker struct {
	ID        string `json:"id"`
	Up        bool   `json:"up"`
	Restarts  uint64 `json:"restarts"`
	Conns     int64  `json:"conns"`
	Delivered uint64 `json:"delivered"`
	SlowNow   int64  `json:"slow_now"`
}

// topTopics is how many topics the admin page lists.
const topTopics = 10

// AdminFromGathered sums a scrape's nodes for the admin page; topics (may be
// nil) gives its top-topics table.
func AdminFromGathered(g metrics.Gathered, mode string, topics []TopicInfo) AdminData {
	d := AdminData{Mode: mode, Time: time.Now().UnixMilli(), Closed: map[string]uint64{}, Workers: []AdminWorker{}}
	byID := map[string]*metrics.Node{}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		byID[n.Worker] = n
		d.Conns += n.Conns
		d.Open += n.Open
		d.Subscriptions += n.Subscriptions
		d.Topics = max(d.Topics, n.Topics)
		d.Published += n.PublishedLocal
		d.Delivered += n.Delivered
		d.Bytes += n.DeliveredBytes
		d.SlowNow += n.SlowNow
		d.SlowMode += n.SlowMode
		d.Conflated += n.Conflated
		d.SlowClosed += n.SlowClosed
		for r, v := range n.Closed {
			d.Closed[r] += v
		}
	}
	if s := g.Supervisor; s != nil {
		d.Published = s.PublishedAPI
		for _, w := range s.Workers {
			row := AdminWorker{ID: w.ID, Up: w.Up, Restarts: w.Restarts}
			if n := byID[w.ID]; n != nil {
				row.Conns, row.Delivered, row.SlowNow = n.Conns, n.Delivered, n.SlowNow
			}
			d.Workers = append(d.Workers, row)
		}
	} else {
		for _, n := range g.Nodes {
			d.Workers = append(d.Workers, AdminWorker{ID: "node", Up: true, Conns: n.Conns, Delivered: n.Delivered, SlowNow: n.SlowNow})
		}
	}
	if topics != nil {
		SortTopics(topics, "subscribers")
		d.TopTopics = topics[:min(len(topics), topTopics)]
	}
	return d
}
