package translate

import "sync"

// Memory is what successive translations of one project remember: the last version of each
// Secret an AuthPolicy reads (an htpasswd file, a JWKS) that parsed. A new version that does
// not parse is refused (InvalidSecret) and the remembered one stays in force (design §2.4), so
// a bad edit never locks users out or lets them in. A deleted Secret is forgotten: its block
// then fails closed. The controller keeps one Memory per project; it lives in memory only,
// so after a restart a Secret that does not parse fails closed until it is fixed.
type Memory struct {
	mu   sync.Mutex
	good map[string][]byte
	used map[string]bool
}

// lastGood returns the remembered version of a Secret key ("namespace/name#key").
func (m *Memory) lastGood(id string) ([]byte, bool) {
	if m == nil {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.good[id]
	if ok {
		m.mark(id)
	}
	return d, ok
}

// remember records a version that parsed.
func (m *Memory) remember(id string, data []byte) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.good == nil {
		m.good = map[string][]byte{}
	}
	m.good[id] = data
	m.mark(id)
}

func (m *Memory) mark(id string) {
	if m.used == nil {
		m.used = map[string]bool{}
	}
	m.used[id] = true
}

// forgetUnused drops what the translation that just ended did not read (Secrets deleted or no
// longer referenced).
func (m *Memory) forgetUnused() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.good {
		if !m.used[id] {
			delete(m.good, id)
		}
	}
	m.used = nil
}
