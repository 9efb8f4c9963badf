package chaosplugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// FileRecorder appends one line "<id>\n" per execution to a log file of
// its own process (runs-<pid>.log in dir), so any number of processes and
// restarts can record into one directory without sharing a file.
//
// Each record is a single write(2) on an O_APPEND file: a process killed
// with SIGKILL has either written the whole line or none of it (the kernel
// does not interrupt a regular-file write for a signal), and the page cache
// outlives the process. Sync additionally fsyncs every record, which only
// matters for a machine crash, not for the process kills the suite does.
type FileRecorder struct {
	mu   sync.Mutex
	f    *os.File
	sync bool
}

// OpenFileRecorder opens dir/runs-<pid>.log for appending.
func OpenFileRecorder(dir string, syncEach bool) (*FileRecorder, error) {
	if dir == "" {
		return nil, errors.New("chaosplugin: record directory is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, fmt.Sprintf("runs-%d.log", os.Getpid()))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &FileRecorder{f: f, sync: syncEach}, nil
}

// Record implements Recorder.
func (r *FileRecorder) Record(_ context.Context, id string) error {
	if strings.ContainsAny(id, "\n\r") {
		return errors.New("chaosplugin: id contains a line break")
	}
	line := []byte(id + "\n")
	// The mutex keeps the fsync of one record from racing another's write;
	// O_APPEND alone already keeps lines whole.
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.Write(line); err != nil {
		return err
	}
	if r.sync {
		return r.f.Sync()
	}
	return nil
}

// Close closes the log.
func (r *FileRecorder) Close() error { return r.f.Close() }

// ReadRecords counts the executions recorded per id by every runs-*.log in
// dir. A torn last line (no newline) would mean a partial write: it is
// reported as an error rather than counted.
func ReadRecords(dir string) (map[string]int, error) {
	counts := map[string]int{}
	err := readLogs(dir, func(id string, _ int) { counts[id]++ })
	return counts, err
}

// ReadRecordsByProcess lists, per id, the pid of the process of each
// execution, so a suite can tell which process crash caused a duplicate.
func ReadRecordsByProcess(dir string) (map[string][]int, error) {
	pids := map[string][]int{}
	err := readLogs(dir, func(id string, pid int) { pids[id] = append(pids[id], pid) })
	return pids, err
}

func readLogs(dir string, each func(id string, pid int)) error {
	paths, err := filepath.Glob(filepath.Join(dir, "runs-*.log"))
	if err != nil {
		return err
	}
	for _, p := range paths {
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "runs-"), ".log"))
		if err != nil {
			return fmt.Errorf("%s: not runs-<pid>.log", p)
		}
		if err := readLog(p, func(id string) { each(id, pid) }); err != nil {
			return err
		}
	}
	return nil
}

func readLog(path string, each func(id string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			if line != "" {
				return fmt.Errorf("%s: torn record %q", path, line)
			}
			return nil
		}
		if err != nil {
			return err
		}
		each(strings.TrimSuffix(line, "\n"))
	}
}

// MemoryRecorder counts executions per id in memory, for in-process tests.
type MemoryRecorder struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
	// changed is closed and replaced on every record so waiters wake up.
	changed chan struct{}
}

// NewMemoryRecorder returns an empty recorder.
func NewMemoryRecorder() *MemoryRecorder {
	return &MemoryRecorder{counts: map[string]int{}, changed: make(chan struct{})}
}

// Record implements Recorder.
func (m *MemoryRecorder) Record(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[id]++
	m.total++
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// Counts returns a copy of the executions per id.
func (m *MemoryRecorder) Counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.counts))
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// WaitFor blocks until every id in ids has been recorded at least once or
// ctx ends; it returns the ids still missing.
func (m *MemoryRecorder) WaitFor(ctx context.Context, ids []string) []string {
	for {
		m.mu.Lock()
		var missing []string
		for _, id := range ids {
			if m.counts[id] == 0 {
				missing = append(missing, id)
			}
		}
		changed := m.changed
		m.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return missing
		}
	}
}
