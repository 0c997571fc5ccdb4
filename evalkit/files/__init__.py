"""Files evalkit reads and writes: crash-safe writes, strict YAML, JSONL, content digests and evalkit's directories."""
