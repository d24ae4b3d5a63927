"""samdesk tests (a package so that bench/ can reuse tests.support)."""
