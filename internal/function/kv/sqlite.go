package kv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver

	"apoxy.dev/apoxy/internal/function"
)

// schema is one table for all of a project's functions. Keys are stored as BLOBs, so that
// SQLite compares them byte by byte (the order List promises) and a key is never mistaken for
// text with a collation. expires is in Unix milliseconds; NULL never expires. The table keeps
// its rowid (values can be megabytes, which WITHOUT ROWID tables handle badly), and the
// primary key is its unique index.
const schema = `
CREATE TABLE IF NOT EXISTS kv (
	namespace TEXT NOT NULL,
	key       BLOB NOT NULL,
	value     BLOB NOT NULL,
	metadata  TEXT NOT NULL DEFAULT '',
	expires   INTEGER,
	PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL;
`

// purgeBatch bounds the rows one purge statement deletes, so that a purge never holds the
// write lock for long; purgeEveryWrites is how many writes run one batch on the side.
const (
	purgeBatch       = 500
	purgeEveryWrites = 256
)

// Store is a project's key-value store in one SQLite file, in WAL mode: reads run
// concurrently, and this process's writes are serialised in Go rather than left to SQLite's
// busy-wait. Expired rows are invisible at once (every read compares with the clock) and
// deleted in bounded batches, on a timer and every few hundred writes. It is safe for
// concurrent use.
type Store struct {
	db   *sql.DB
	opts options

	get, put, del, purge *sql.Stmt

	writeMu sync.Mutex
	writes  atomic.Uint64
	closed  atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

// Open opens (creating it if needed) the SQLite database at path as a project's store.
func Open(path string, opts ...Option) (*Store, error) {
	o := newOptions(opts)
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("kv: opening %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("kv: creating the schema in %s: %w", path, err)
	}
	s := &Store{db: db, opts: o, stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&s.get, `SELECT value, metadata, expires FROM kv WHERE namespace = ? AND key = ? AND (expires IS NULL OR expires > ?)`},
		{&s.put, `INSERT INTO kv (namespace, key, value, metadata, expires) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expires = excluded.expires`},
		{&s.del, `DELETE FROM kv WHERE namespace = ? AND key = ?`},
		{&s.purge, `DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires <= ? LIMIT ?)`},
	} {
		if *p.st, err = db.Prepare(p.sql); err != nil {
			db.Close()
			return nil, fmt.Errorf("kv: preparing a statement: %w", err)
		}
	}
	if o.purgeEvery > 0 {
		go s.purgeLoop()
	} else {
		close(s.done)
	}
	return s, nil
}

// Namespace is the key-value namespace of one function of the project. Namespaces share
// the file and nothing else: no call on one can see another's keys.
func (s *Store) Namespace(function string) function.KV {
	return &sqliteNamespace{s: s, ns: function}
}

// Close stops the purge timer and closes the database; calls after it fail with ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.done
	s.writeMu.Lock() // let a write in progress finish
	defer s.writeMu.Unlock()
	return s.db.Close()
}

// Purge deletes expired rows in batches until none is left, and returns how many it
// deleted. The timer calls it; it is exported for tools and tests.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := s.purgeOnce(ctx)
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}

// purgeOnce deletes one batch of expired rows.
func (s *Store) purgeOnce(ctx context.Context) (int64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	res, err := s.purge.ExecContext(ctx, s.opts.now().UnixMilli(), purgeBatch)
	if err != nil {
		return 0, fmt.Errorf("kv: purging expired keys: %w", err)
	}
	return res.RowsAffected()
}

func (s *Store) purgeLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// An error here (a full disk, say) is met again by the next write, which reports it.
			_, _ = s.Purge(context.Background())
		}
	}
}

// write runs one write statement under the process's write lock, and every
// purgeEveryWrites writes one purge batch after it.
func (s *Store) write(ctx context.Context, st *sql.Stmt, args ...any) error {
	s.writeMu.Lock()
	if s.closed.Load() { // checked under the lock: Close takes it before closing the database
		s.writeMu.Unlock()
		return ErrClosed
	}
	_, err := st.ExecContext(ctx, args...)
	s.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	if s.writes.Add(1)%purgeEveryWrites == 0 {
		_, _ = s.purgeOnce(ctx)
	}
	return nil
}

// sqliteNamespace is one function's view of a Store.
type sqliteNamespace struct {
	s  *Store
	ns string
}

func (n *sqliteNamespace) Get(ctx context.Context, key string) (function.KVValue, bool, error) {
	if err := checkKey(key); err != nil {
		return function.KVValue{}, false, err
	}
	if n.s.closed.Load() {
		return function.KVValue{}, false, ErrClosed
	}
	var (
		v       function.KVValue
		expires sql.NullInt64
	)
	err := n.s.get.QueryRowContext(ctx, n.ns, []byte(key), n.s.opts.now().UnixMilli()).Scan(&v.Value, &v.Metadata, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return function.KVValue{}, false, nil
	}
	if err != nil {
		return function.KVValue{}, false, fmt.Errorf("kv: %w", err)
	}
	if v.Value == nil {
		v.Value = []byte{}
	}
	if expires.Valid {
		v.Expires = time.UnixMilli(expires.Int64)
	}
	return v, true, nil
}

func (n *sqliteNamespace) Put(ctx context.Context, key string, value []byte, opts function.KVPut) error {
	if err := checkPut(key, value, opts, n.s.opts.maxValueBytes); err != nil {
		return err
	}
	var expires any // NULL: never
	if opts.TTL > 0 {
		expires = n.s.opts.now().UnixMilli() + ttlMillis(opts.TTL)
	}
	if value == nil {
		value = []byte{} // a nil []byte binds as NULL
	}
	return n.s.write(ctx, n.s.put, n.ns, []byte(key), value, opts.Metadata, expires)
}

func (n *sqliteNamespace) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return n.s.write(ctx, n.s.del, n.ns, []byte(key))
}

func (n *sqliteNamespace) List(ctx context.Context, prefix, cursor string, limit int) ([]function.KVKey, string, error) {
	after, limit, err := listArgs(prefix, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	if n.s.closed.Load() {
		return nil, "", ErrClosed
	}
	// The range is [prefix, prefixEnd), or (after, prefixEnd) past a cursor. An empty
	// lower bound is left out: an empty []byte may bind as NULL.
	q := `SELECT key, metadata, expires FROM kv WHERE namespace = ? AND key < ? AND (expires IS NULL OR expires > ?)`
	args := []any{n.ns, []byte(prefixEnd(prefix)), n.s.opts.now().UnixMilli()}
	switch {
	case after != "" && after >= prefix:
		q += ` AND key > ?`
		args = append(args, []byte(after))
	case prefix != "":
		q += ` AND key >= ?`
		args = append(args, []byte(prefix))
	}
	q += ` ORDER BY key LIMIT ?`
	args = append(args, limit+1) // one more tells whether there is a next page
	rows, err := n.s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("kv: %w", err)
	}
	defer rows.Close()
	var keys []function.KVKey
	for rows.Next() {
		var (
			k       []byte
			meta    string
			expires sql.NullInt64
		)
		if err := rows.Scan(&k, &meta, &expires); err != nil {
			return nil, "", fmt.Errorf("kv: %w", err)
		}
		key := function.KVKey{Name: string(k), Metadata: meta}
		if expires.Valid {
			key.Expires = time.UnixMilli(expires.Int64)
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("kv: %w", err)
	}
	if len(keys) > limit {
		keys = keys[:limit]
		return keys, encodeCursor(keys[limit-1].Name), nil
	}
	return keys, "", nil
}
