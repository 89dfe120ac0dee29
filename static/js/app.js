// Superalign's own JS: loaded as a file (never inline) so a strict CSP can forbid inline scripts.
// Feature scripts (review keys, charts) live in their own files next to this one.
