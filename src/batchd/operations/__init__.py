"""One function per API operation: business validation and the store, nothing of the wire."""
