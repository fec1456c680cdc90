package supervisor

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fanwire/fanwire/server"
	"github.com/fanwire/fanwire/server/api"
)

// Requests on a worker's control subject besides the stats report (empty):
// "topics N" lists its N most subscribed topics, "topic NAME" describes one.
const (
	askTopics = "topics "
	askTopic  = "topic "
	// maxWorkerTopics bounds one worker's list so that it fits a NATS
	// message (1 MiB by default): /topics says "partial" beyond it.
	maxWorkerTopics = 5000
	topicsTimeout   = 2 * time.Second
)

// workerTopics is a worker's answer to "topics N".
type workerTopics struct {
	Topics []api.TopicInfo `json:"topics"`
	Total  int             `json:"total"` // topics the worker has; more than len(Topics) when cut
}

// answerTopics answers the topic requests; ok is false for anything else.
func answerTopics(node *server.Node, req []byte) (answer []byte, ok bool) {
	q := string(req)
	switch {
	case strings.HasPrefix(q, askTopics):
		n, err := strconv.Atoi(q[len(askTopics):])
		if err != nil || n < 1 || n > maxWorkerTopics {
			n = maxWorkerTopics
		}
		all, _ := node.Topics()
		api.SortTopics(all, "subscribers")
		answer, _ = json.Marshal(workerTopics{Topics: all[:min(n, len(all))], Total: len(all)})
		return answer, true
	case strings.HasPrefix(q, askTopic):
		d, found := node.Topic(q[len(askTopic):])
		if !found {
			return []byte("null"), true
		}
		answer, _ = json.Marshal(d)
		return answer, true
	}
	return nil, false
}

// askWorkers sends req to every ready worker in parallel and returns the
// answers that came back in time.
func (s *Supervisor) askWorkers(req string, timeout time.Duration) [][]byte {
	answers := make([][]byte, len(s.workers))
	var wg sync.WaitGroup
	for i, w := range s.workers {
		if !w.status().Ready {
			continue
		}
		wg.Go(func() {
			if m, err := s.nc.Request(s.controlSubject(w.id), []byte(req), timeout); err == nil {
				answers[i] = m.Data
			}
		})
	}
	wg.Wait()
	out := answers[:0]
	for _, a := range answers {
		if a != nil {
			out = append(out, a)
		}
	}
	return out
}

// supervisorTopics is api.TopicSource over the workers: each topic's
// subscribers summed over the workers that follow it, its seq the highest.
type supervisorTopics struct{ s *Supervisor }

func (t supervisorTopics) Topics() ([]api.TopicInfo, bool) { return t.s.topics(maxWorkerTopics) }

func (t supervisorTopics) Topic(name string) (api.TopicDetail, bool) {
	var merged api.TopicDetail
	found := false
	for _, a := range t.s.askWorkers(askTopic+name, topicsTimeout) {
		var d *api.TopicDetail
		if json.Unmarshal(a, &d) != nil || d == nil {
			continue
		}
		if !found {
			merged, found = *d, true
			continue
		}
		merged.Subscribers += d.Subscribers
		merged.Seq = max(merged.Seq, d.Seq)
		merged.History = max(merged.History, d.History)
		merged.KeepsLastValue = merged.KeepsLastValue || d.KeepsLastValue
		if d.LastSeq > merged.LastSeq {
			merged.LastSeq, merged.Last = d.LastSeq, d.Last
		}
	}
	return merged, found
}

// topics merges the workers' top-n lists; complete is false when a worker
// has more topics than it sent, or did not answer.
func (s *Supervisor) topics(n int) (list []api.TopicInfo, complete bool) {
	ready := 0
	for _, w := range s.workers {
		if w.status().Ready {
			ready++
		}
	}
	answers := s.askWorkers(askTopics+strconv.Itoa(n), topicsTimeout)
	complete = len(answers) == ready
	byName := map[string]int{}
	for _, a := range answers {
		var wt workerTopics
		if json.Unmarshal(a, &wt) != nil {
			complete = false
			continue
		}
		if wt.Total > len(wt.Topics) {
			complete = false
		}
		for _, ti := range wt.Topics {
			if i, ok := byName[ti.Topic]; ok {
				list[i].Subscribers += ti.Subscribers
				list[i].Seq = max(list[i].Seq, ti.Seq)
				continue
			}
			byName[ti.Topic] = len(list)
			list = append(list, ti)
		}
	}
	if list == nil {
		list = []api.TopicInfo{}
	}
	return list, complete
}
