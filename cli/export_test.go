package cli

// SyncBuffer lets the external test package (cli_test) share the
// goroutine-safe output buffer of the in-package tests.
type SyncBuffer = syncBuffer
