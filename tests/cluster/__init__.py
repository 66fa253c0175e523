"""lakescore on a local Spark standalone cluster."""
