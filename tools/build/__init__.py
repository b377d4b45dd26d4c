"""Build the shipped notebooks and generated docs from the chapter sources (`make release`)."""
