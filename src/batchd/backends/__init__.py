"""Execution backends behind one protocol (``base.Backend``): fake, local."""
