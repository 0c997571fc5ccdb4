"""Cost and latency: the suite's ``usage:`` figures and prices, and the stage that measures them."""
