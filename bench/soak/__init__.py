"""The soak: the real system (`custody up`) under a simulated jail and injected faults."""
