package worker

// isKVKey reports whether s is a valid JetStream KV key: dot-separated
// tokens of [-/_=a-zA-Z0-9], none empty — the pattern
// ^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$ checked by hand, because the
// regexp ran twice per message with idempotency on (lookup and marker
// write). TestIsKVKeyMatchesPattern and FuzzIsKVKey hold it to the
// pattern.
func isKVKey(s string) bool {
	if s == "" {
		return false
	}
	tokenLen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if tokenLen == 0 {
				return false
			}
			tokenLen = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '/', c == '_', c == '=':
		default:
			return false
		}
		tokenLen++
	}
	return tokenLen > 0
}
