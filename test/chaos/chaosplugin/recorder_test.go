package chaosplugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The crash suite's verdict (lost/duplicated) rests on these files being
// read back exactly: whole lines from concurrent writers, per process.
func TestFileRecorderConcurrentWholeLines(t *testing.T) {
	dir := t.TempDir()
	rec, err := OpenFileRecorder(dir, true)
	require.NoError(t, err)
	const goroutines, each = 8, 300
	errs := make(chan error, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- rec.Record(context.Background(), fmt.Sprintf("id.%d.%d", g, i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, rec.Close())

	got, err := ReadRecords(dir)
	require.NoError(t, err)
	require.Len(t, got, goroutines*each)
	for id, n := range got {
		require.Equal(t, 1, n, id)
	}
	require.Error(t, rec.Record(context.Background(), "after-close"), "a closed recorder must not pretend to record")
	require.ErrorContains(t, (&FileRecorder{}).Record(context.Background(), "a\nb"), "line break")
}

func TestReadRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    map[string]int
		wantPID map[string][]int
		wantErr string
	}{
		{
			name:    "counts across processes",
			files:   map[string]string{"runs-10.log": "a\nb\n", "runs-11.log": "b\nc\n"},
			want:    map[string]int{"a": 1, "b": 2, "c": 1},
			wantPID: map[string][]int{"a": {10}, "b": {10, 11}, "c": {11}},
		},
		{
			name:    "torn last line is an error, not a record",
			files:   map[string]string{"runs-12.log": "a\nb"},
			wantErr: "torn record",
		},
		{
			name:    "file not named by pid",
			files:   map[string]string{"runs-x.log": "a\n"},
			wantErr: "not runs-<pid>.log",
		},
		{
			name:  "other files ignored",
			files: map[string]string{"notes.txt": "a\n"},
			want:  map[string]int{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
			}
			got, err := ReadRecords(dir)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if tc.wantPID != nil {
				pids, err := ReadRecordsByProcess(dir)
				require.NoError(t, err)
				for id, want := range tc.wantPID {
					require.ElementsMatch(t, want, pids[id], id)
				}
			}
		})
	}
}
