"""Test scaffolding: a tiny random model on disk, and synthetic runs with every report section filled."""
