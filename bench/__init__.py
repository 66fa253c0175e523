"""lakescore's throughput and memory benchmark against reference scorers (see bench/README.md)."""
