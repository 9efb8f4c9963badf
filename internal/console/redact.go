package console

import "github.com/aweber-imbi/imbi-worker/internal/dlq"

// redact is the console's one call into the dead-letter redaction (the
// same as `imbi-worker dlq show`): the API's show, the letter page and the
// search index all read letters through it.
func redact(l dlq.Letter) dlq.View { return dlq.Redacted(l) }
