"""The loop that moves jobs: snapshot, plan, apply, then tell the backends."""
