"""Baseline vs candidate on the same items: paired statistics, thresholds, verdicts and the identity diff."""
