"""Developer tools of the dcaas.cluster collection (not shipped in the collection build)."""
