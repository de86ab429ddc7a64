"""What-if simulation: batchd's own runtime and scheduler over a recorded or generated workload,
on the fake backend and a virtual clock (``batchd simulate``)."""
