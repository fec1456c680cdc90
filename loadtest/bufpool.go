package loadtest

// bufPool keeps a few spare leftover buffers per size class for one loop.
// Leftovers exist only while a frame is split across reads, so the pool is
// small and an idle connection holds no buffer at all.
type bufPool struct {
	classes [3][][]byte
}

var bufClassSizes = [3]int{512, 4 << 10, 64 << 10}

const bufPoolKeep = 256 // spare buffers kept per class

func (p *bufPool) get(n int) []byte {
	for i, size := range bufClassSizes {
		if n <= size {
			free := p.classes[i]
			if k := len(free); k > 0 {
				b := free[k-1]
				p.classes[i] = free[:k-1]
				return b[:0]
			}
			return make([]byte, 0, size)
		}
	}
	return make([]byte, 0, n)
}

func (p *bufPool) put(b []byte) {
	for i, size := range bufClassSizes {
		if cap(b) == size {
			if len(p.classes[i]) < bufPoolKeep {
				p.classes[i] = append(p.classes[i], b[:0])
			}
			return
		}
	}
}
